"""`dspl fit`: LightningCLI over the training module and data module (YAML configs, any Trainer flag).

LightningCLI builds its parser from the classes it serves, so it can only answer once lightning has loaded
(seconds). What a user most often mistypes is answered before that, in milliseconds: an option the parser does
not have (down to a Trainer argument such as --trainer.max_epochs), and a file or folder given on the command line
that is not there (or is a FIFO, which the parser would wait on forever).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from dspl.errors import DsplError
from dspl.files import regular_file

# The first part of every option LightningCLI's parser of `dspl fit` takes (test_fit compares them with its help).
TOP_LEVEL_OPTIONS = ("help", "config", "print_config", "seed_everything", "ckpt_path", "trainer", "model", "data")
# The second part of the options of each group (Trainer's arguments, FitModule's, FitDataModule's; test_fit too).
GROUP_OPTIONS = {
    "trainer": ("accelerator", "accumulate_grad_batches", "barebones", "benchmark", "callbacks",
                "check_val_every_n_epoch", "default_root_dir", "detect_anomaly", "deterministic", "devices",
                "enable_autolog_hparams", "enable_checkpointing", "enable_model_summary", "enable_progress_bar",
                "fast_dev_run", "gradient_clip_algorithm", "gradient_clip_val", "inference_mode",
                "limit_predict_batches", "limit_test_batches", "limit_train_batches", "limit_val_batches",
                "log_every_n_steps", "logger", "max_epochs", "max_steps", "max_time", "min_epochs", "min_steps",
                "model_registry", "num_nodes", "num_sanity_val_steps", "overfit_batches", "plugins", "precision",
                "profiler", "reload_dataloaders_every_n_epochs", "strategy", "sync_batchnorm",
                "use_distributed_sampler", "val_check_interval"),
    "model": ("channels_last", "class_config", "config", "config_index", "hp_config", "mixed_precision", "pretrained"),
    "data": ("cache", "config", "data_dir", "label_file", "num_workers"),
}
SHORT_OPTIONS = {"-h": "help", "-c": "config"}
# options naming a file or folder the run reads -> what it holds (checked where given by their whole names)
INPUT_FILES = {"config": "fit config", "model.hp_config": "hyper-parameter config",
               "model.class_config": "class config", "data.label_file": "label file", "ckpt_path": "checkpoint"}
INPUT_FOLDERS = {"data.data_dir": "data directory"}
LIGHTNING_CHECKPOINTS = ("last", "best", "hpc", "null")  # --ckpt_path values that name no file: Lightning finds it


def check_arguments(args: list[str]) -> None:
    """A DsplError for an option `dspl fit` does not have, or for an input file or folder it names that is not
    there; the rest (values, types, what a --config file holds) is LightningCLI's to check."""
    for position, arg in enumerate(args):
        if not arg.startswith("-") or arg == "-" or arg[1:2].isdigit():  # a value (a negative number too)
            continue
        option, equals, inline = arg.partition("=")
        name = SHORT_OPTIONS.get(option) or (option[2:].removesuffix("+") if option.startswith("--") else None)
        if name is None or not _known(name):
            raise DsplError(f"dspl fit: unrecognized arguments: {arg} (see 'dspl fit -h')")
        value = inline if equals else args[position + 1] if position + 1 < len(args) else None
        try:
            _check_input(name, value)
        except DsplError as exc:
            raise DsplError(f"dspl fit: {exc} (see 'dspl fit -h')") from None


def _known(name: str) -> bool:
    """Whether ``name`` (an option without its dashes) starts one of the parser's: the parser takes unambiguous
    abbreviations too (--conf, --trainer.max_epoch), so a last part may be the start of a known one; what lies
    below a group's option (--trainer.logger.init_args.save_dir, --model.config.model.basemodel_name) is the
    parser's to check."""
    group, dot, rest = name.partition(".")
    if not dot:
        return any(option.startswith(name) for option in TOP_LEVEL_OPTIONS)
    option, deeper, _ = rest.partition(".")
    known = GROUP_OPTIONS.get(group, ())
    return option in known if deeper else any(candidate.startswith(option) for candidate in known)


def _check_input(name: str, value: str | None) -> None:
    if value is None or name == "config" and any(c in value for c in ":{"):  # --config takes YAML content too
        return
    if name == "ckpt_path" and (value in LIGHTNING_CHECKPOINTS or value.startswith("registry")):
        return
    if name in INPUT_FILES:
        regular_file(value, INPUT_FILES[name])
    elif name in INPUT_FOLDERS and not Path(value).is_dir():
        found = os.path.lexists(value)
        raise DsplError(f"{value}: " + (f"is not a directory ({INPUT_FOLDERS[name]})" if found else
                                         f"{INPUT_FOLDERS[name]} not found"))


@click.command("fit", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Train with LightningCLI: --config file.yaml, --print_config, --trainer.* flags; see `dspl fit --help`."""
    check_arguments(list(args))
    from dspl.workflows.fit import fit

    model_file = fit(list(args))
    if model_file is not None:  # rank 0
        click.echo(f"model: {model_file}")
