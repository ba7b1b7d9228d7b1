"""`dspl fit`: LightningCLI over the training module and the data module (YAML configs, any Trainer flag).

The configuration is either a DeepSpectrumLite hp config (``--model.hp_config`` and ``--model.config_index``) or
given field by field (``--model.config.model.basemodel_name`` ..., what `--print_config` lists); the data module
gets the model's configuration arguments. max_epochs and the seed default to the configuration's.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import lightning as L
import rich
import torch
from jsonargparse import ArgumentError, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from dspl.config import RunConfig, check_class_config, load_class_config, load_config
from dspl.data.datamodule import AudioDataModule
from dspl.errors import DsplError
from dspl.files import exclusive_lock
from dspl.models.modelfile import save_model_file, torch_load_safely
from dspl.models.module import DsplModule
from dspl.tensorboard import without_tensorflow
from dspl.workflows.callbacks import interrupts_raised, quiet_lightning
from dspl.workflows.console import log_width
from dspl.workflows.train import MODEL_FILE

log = logging.getLogger(__name__)

LOCK_FILE = ".dspl-fit.lock"
DESCRIPTION = ("Train a dspl model with LightningCLI. dspl's own options (-v, -vv, --threads N) go before or after "
               "`fit`, as for every dspl command.")


def resolve_config(config: RunConfig | Namespace | None, hp_config: str | None, config_index: int) -> RunConfig:
    """The configuration given field by field (built, or still the parser's namespace of its parts), or
    configuration ``config_index`` of an hp config file."""
    if (config is None) == (hp_config is None):
        raise DsplError("dspl fit: give the configuration either as --model.hp_config FILE (a DeepSpectrumLite hp "
                        "config) or field by field (--model.config.*), not both or neither")
    if config is None:
        return load_config(hp_config, config_index)
    if isinstance(config, Namespace):
        return RunConfig.from_dict({key: value for part in config.as_dict().values() for key, value in part.items()},
                                   "--model.config")
    return config


class FitModule(DsplModule):
    """DsplModule configured for LightningCLI: the configuration field by field or from an hp config file."""

    def __init__(self, class_config: str, hp_config: Optional[str] = None, config_index: int = 0,
                 config: Optional[RunConfig] = None, pretrained: bool = True, channels_last: bool = True,
                 mixed_precision: bool = True) -> None:
        """The model of one configuration.

        Args:
            class_config: JSON object mapping class labels to names.
            hp_config: DeepSpectrumLite hp config (JSON grid of hyper-parameters), instead of config.
            config_index: which configuration of the grid to train (file order, last key fastest).
            config: the configuration field by field, instead of hp_config.
            pretrained: load the backbone's `weights` (false when a checkpoint restores every weight).
            channels_last: train in channels_last memory format where the device gains from it.
            mixed_precision: train with bf16 autocast where it is faster (GPUs from Ampere; CPUs with AMX, for
                models without grouped convolutions).
        """
        resolved = resolve_config(config, hp_config, config_index)
        classes = load_class_config(class_config)
        check_class_config(classes, resolved.prediction_type, class_config)
        super().__init__(resolved, classes, pretrained=pretrained, channels_last=channels_last,
                         mixed_precision=mixed_precision)
        spec = resolved.spec
        if spec.use_plot_images or not spec.whole_file:  # one input shape: Lightning's summary counts its FLOPs
            self.example_input_array = torch.zeros(1, *spec.input_shape())

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor] | torch.Tensor,
                                dataloader_idx: int) -> dict[str, torch.Tensor] | torch.Tensor:
        """Batches of audio become plots; the summary's example input is plots already."""
        if isinstance(batch, torch.Tensor):
            return batch
        return super().on_after_batch_transfer(batch, dataloader_idx)


class FitDataModule(AudioDataModule):
    """AudioDataModule configured for LightningCLI with the model's configuration arguments (linked)."""

    def __init__(self, data_dir: str, label_file: str, class_config: str, hp_config: Optional[str] = None,
                 config_index: int = 0, config: Optional[RunConfig] = None, cache: bool = True,
                 num_workers: int = 0) -> None:
        """The audio of one configuration, chunked and cached.

        Args:
            data_dir: directory of the audio files the label file names.
            label_file: CSV of file names and labels (partitions from the parser, e.g. train_/devel_/test_ prefixes).
            class_config: linked from model.class_config.
            hp_config: linked from model.hp_config.
            config_index: linked from model.config_index.
            config: linked from model.config.
            cache: keep decoded audio in memory, so later epochs decode nothing.
            num_workers: DataLoader worker processes.
        """
        super().__init__(data_dir, label_file, resolve_config(config, hp_config, config_index),
                         load_class_config(class_config), cache=cache, num_workers=num_workers)


class FitCLI(LightningCLI):
    """LightningCLI whose data module shares the model's configuration arguments, with max_epochs and seed from
    the configuration."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("class_config", "hp_config", "config_index", "config"):
            parser.link_arguments(f"model.{key}", f"data.{key}")
        parser.add_argument("--ckpt_path", type=Optional[str], default=None, help="Checkpoint to resume from.")

    def before_instantiate_classes(self) -> None:
        config = resolve_config(self.config["model.config"], self.config["model.hp_config"],
                                self.config["model.config_index"])
        if self.config["trainer.max_epochs"] is None:
            self.config["trainer.max_epochs"] = config.training.total_epochs
        if self.config["trainer.strategy"] == "ddp" and config.model.pretrained:
            # frozen backbone layers get no gradients: DDP must be told to expect unused parameters
            log.info("pretrained backbone (partly) frozen: using strategy ddp_find_unused_parameters_true")
            self.config["trainer.strategy"] = "ddp_find_unused_parameters_true"
        if self.config["seed_everything"] is False:
            self.config["seed_everything"] = L.seed_everything(config.training.seed, workers=True, verbose=False)


def fit(args: list[str] | None = None) -> Path | None:
    """Run `dspl fit` with LightningCLI arguments; rank 0 writes model.h5 into the trainer's log dir and returns it.

    A usage error (a missing --config file, a bad value, broken YAML, Trainer flags that contradict) is a DsplError
    of one line (`-h` prints the full help); Ctrl-C a KeyboardInterrupt.
    """
    without_tensorflow()
    if log_width() is not None:  # a log: Lightning's model summary as wide as the progress bar, not 80 columns
        rich.reconfigure(width=log_width())
    with quiet_lightning():
        try:
            cli = FitCLI(FitModule, FitDataModule, args=args, run=False, seed_everything_default=False,
                         auto_configure_optimizers=False, load_from_checkpoint_support=False,
                         save_config_kwargs={"overwrite": True},
                         parser_kwargs={"prog": "dspl fit", "description": DESCRIPTION, "exit_on_error": False})
        except (ArgumentError, MisconfigurationException) as exc:  # a flag's value; flags that contradict
            raise DsplError(f"dspl fit: {' '.join(str(exc).split())} (see 'dspl fit -h')") from None
        checkpoint = cli.config["ckpt_path"]
        if checkpoint is not None and Path(checkpoint).is_file():  # a damaged one: one line, before any output
            torch_load_safely(Path(checkpoint), "a Lightning checkpoint")
        out_dir = Path(cli.trainer.log_dir or cli.trainer.default_root_dir)  # under DDP a collective: every rank asks
        with ExitStack() as stack:
            if cli.trainer.is_global_zero:  # two fits that chose the same version folder at once: the second stops
                stack.enter_context(exclusive_lock(out_dir / LOCK_FILE, "another dspl fit"))
            with interrupts_raised():
                cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config["ckpt_path"])
            if not cli.trainer.is_global_zero:
                return None
            return save_model_file(out_dir / MODEL_FILE, cli.model.model, cli.model.config, cli.model.classes,
                                   cli.model.input_shape)
