"""The `train` job: one model per grid configuration, DeepSpectrumLite's output layout, a test report at the end."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from rich.console import Console
from rich.table import Table

from dspl.config import (
    ClassConfig,
    HParams,
    check_class_config,
    load_class_config,
    load_config,
    load_grid,
    select_configurations,
)
from dspl.data.datamodule import AudioDataModule
from dspl.tensorboard import without_tensorflow
from dspl.errors import DsplError
from dspl.files import atomic_path, clean_stale, clean_stale_work_dirs, commit, prepare_output_dir, temporary_path
from dspl.models.modelfile import read_checkpoint, read_model_file, save_model_file
from dspl.models.module import DsplModule
from dspl.models.optim import total_epochs, uses_pretrained_weights
from dspl.workflows.report import write_report

log = logging.getLogger(__name__)

MODEL_FILE = "model.h5"
CHECKPOINT_FILE = "model.ckpt"
EPOCH_CHECKPOINT_FILE = "last.ckpt"
# Lightning's advice that does not apply: dspl's loader only hands out cached waveforms on purpose, and the
# module (not the data module) makes the plots after the batch transfer.
QUIET_WARNINGS = (r".*does not have many workers.*", r".*smaller than the logging interval.*",
                  r".*overridden `on_after_batch_transfer` in `LightningModule`.*",
                  r".*LightningCLI's args parameter is intended to run from within Python.*")


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence the Lightning warnings in QUIET_WARNINGS (and only those)."""
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def run_name(hp: HParams, index: int) -> str:
    """The per-configuration directory name DeepSpectrumLite used: <tb_run_id>_config_<i>."""
    return f"{hp['tb_run_id']}_config_{index}"


def output_dirs(model_dir: str | Path, hp: HParams, index: int) -> tuple[Path, Path]:
    """(TensorBoard log dir, model dir) of configuration ``index`` under ``model_dir``."""
    model_dir = Path(model_dir)
    name = run_name(hp, index)
    return model_dir / "logs" / hp["tb_experiment"] / name, model_dir / "models" / hp["tb_experiment"] / name


def train(data_dir: str | Path, model_dir: str | Path, hp_config: str | Path, class_config: str | Path,
          label_file: str | Path, disable_cache: bool = False, *, restart: bool = False, num_workers: int = 0,
          channels_last: bool = True, mixed_precision: bool = True, trainer_options: dict[str, Any] | None = None,
          console: Console | None = None) -> list[dict[str, Any]]:
    """Train every configuration of the grid (or the one SLURM_ARRAY_TASK_ID names); returns one result per config.

    A re-run of the same command resumes: configurations whose model.h5 holds this configuration are skipped,
    one interrupted after an epoch continues from its epoch checkpoint. ``restart`` trains every selected
    configuration from scratch instead, replacing what its folders hold (TensorBoard events included).
    ``channels_last``/``mixed_precision`` allow the training device's speed-ups (models/speed.py); false turns
    them off. ``trainer_options`` go to ``lightning.Trainer`` (e.g. accelerator, devices, precision) and override
    dspl's defaults. Each result holds the index, the output paths, whether it was skipped, the test metrics and the
    test chunk scores.
    """
    hp_config = Path(hp_config)
    configs = load_grid(hp_config)
    classes = load_class_config(class_config)
    selected = select_configurations(configs)
    for index, hp in selected:  # every configuration is checked before the first one trains
        check_class_config(classes, hp["prediction_type"], str(class_config))
        if total_epochs(hp) <= 0:
            raise DsplError(f"{hp_config} (configuration {index}): pre_epochs + epochs is 0, expected at least "
                            "one epoch to train")
    prepare_output_dir(model_dir, "model directory (-md)")
    clean_stale_work_dirs()
    plans = [(index, hp, plan_configuration(model_dir, hp, index, restart)) for index, hp in selected]
    console = console or Console()
    results = []
    for index, hp, plan in plans:
        console.rule(f"configuration {index} ({len(configs)} in the grid): {run_name(hp, index)}")
        log_dir, out_dir = output_dirs(model_dir, hp, index)
        if plan == "complete":
            console.print(f"configuration {index}: complete ({out_dir / MODEL_FILE}), skipped; "
                          "--restart trains it again", soft_wrap=True)
            results.append({"index": index, "model_file": out_dir / MODEL_FILE, "skipped": True,
                            "checkpoint": out_dir / CHECKPOINT_FILE, "log_dir": log_dir, "test": {},
                            "test_scores": None})
            continue
        if plan == "restart":
            _remove_run(log_dir, out_dir)
        results.append(train_configuration(
            index, hp, classes, data_dir=data_dir, label_file=label_file, model_dir=model_dir,
            hp_source_dir=hp_config.resolve().parent, cache=not disable_cache, num_workers=num_workers,
            channels_last=channels_last, mixed_precision=mixed_precision, trainer_options=trainer_options,
            console=console,
        ))
    return results


def _differing_key(stored: HParams, hp: HParams) -> str | None:
    """The first key whose value differs between two configurations (compared as JSON), or None."""
    return next((key for key in dict.fromkeys([*hp, *stored])
                 if json.dumps(stored.get(key), sort_keys=True) != json.dumps(hp.get(key), sort_keys=True)), None)


def plan_configuration(model_dir: str | Path, hp: HParams, index: int, restart: bool = False) -> str:
    """What a run does with configuration ``index``: 'train', 'resume', 'complete' (skip) or 'restart'.

    Finishes a killed run's commit and removes its leftovers first. A DsplError refuses a folder that holds
    another configuration's model or checkpoint (unless ``restart``).
    """
    log_dir, out_dir = output_dirs(model_dir, hp, index)
    clean_stale(out_dir)
    if restart:
        return "restart"
    for name, read in ((MODEL_FILE, read_model_file), (EPOCH_CHECKPOINT_FILE, read_checkpoint)):
        path = out_dir / name
        if not path.exists():
            continue
        stored = read(path)[0]
        key = _differing_key(stored, hp)
        if key is not None:
            raise DsplError(
                f"{path}: holds a model of another configuration (key '{key}' is {json.dumps(stored.get(key))} "
                f"there, {json.dumps(hp.get(key))} in configuration {index}); use another -md or tb_run_id, or "
                "--restart to replace it")
        return "complete" if name == MODEL_FILE else "resume"
    return "train"


def _remove_run(log_dir: Path, out_dir: Path) -> None:
    """Forget a configuration's earlier run (--restart): its TensorBoard events, model, checkpoints."""
    shutil.rmtree(log_dir, ignore_errors=True)
    for name in (MODEL_FILE, CHECKPOINT_FILE, EPOCH_CHECKPOINT_FILE):
        (out_dir / name).unlink(missing_ok=True)


class EpochCheckpoint(Callback):
    """Writes the full training state to one file after every training epoch, atomically, for resuming."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with atomic_path(self.path) as temporary:
            trainer.save_checkpoint(temporary, weights_only=False)


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, counting epochs 1..max_epochs as the resume message and the report's
    training curves do (Lightning's own bar shows "Epoch 0/1" .. "Epoch 1/1" for two epochs).

    ``_get_train_description`` is Lightning's own (private) hook for that text; test_train_workflow runs a real
    fit with this bar, so a Lightning release that renames it fails there rather than showing the old count.
    """

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        # as wide as the validation bar's description, so the bars do not jump when they alternate
        return f"{description:{len(self.validation_description)}}"


def save_unit(trainer: L.Trainer, module: DsplModule, out_dir: Path, hp: HParams, classes: ClassConfig) -> Path:
    """Write model.ckpt and model.h5 as one unit (both staged, then committed) and drop the epoch checkpoint."""
    staged_checkpoint, staged_model = temporary_path(out_dir / CHECKPOINT_FILE), temporary_path(out_dir / MODEL_FILE)
    try:
        trainer.save_checkpoint(staged_checkpoint, weights_only=False)
        save_model_file(staged_model, module.model, hp, classes, module.input_shape)
        commit({staged_checkpoint: out_dir / CHECKPOINT_FILE, staged_model: out_dir / MODEL_FILE})
    finally:
        staged_checkpoint.unlink(missing_ok=True)
        staged_model.unlink(missing_ok=True)
    (out_dir / EPOCH_CHECKPOINT_FILE).unlink(missing_ok=True)
    return out_dir / MODEL_FILE


def train_configuration(index: int, hp: HParams, classes: ClassConfig, *, data_dir: str | Path,
                        label_file: str | Path, model_dir: str | Path, hp_source_dir: str | Path | None = None,
                        cache: bool = True, num_workers: int = 0, channels_last: bool = True,
                        mixed_precision: bool = True, trainer_options: dict[str, Any] | None = None,
                        console: Console | None = None) -> dict[str, Any]:
    """Train, save (model.h5 + model.ckpt) and test one configuration; returns its paths, test metrics and the
    test partition's chunk scores (label file order).

    An epoch checkpoint of this configuration in its folder (a killed run) is resumed from.
    """
    console = console or Console()
    log_dir, out_dir = output_dirs(model_dir, hp, index)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_from = out_dir / EPOCH_CHECKPOINT_FILE
    if resume_from.is_file():
        epoch = read_checkpoint(resume_from)[3]["epoch"] + 1
        console.print(f"configuration {index}: resuming after epoch {epoch} of {total_epochs(hp)} "
                      f"({resume_from})", soft_wrap=True)
    without_tensorflow()
    L.seed_everything(hp["seed"], workers=True, verbose=False)
    module = DsplModule(hp, classes.to_dict(), channels_last=channels_last, mixed_precision=mixed_precision)
    data = AudioDataModule(data_dir, label_file, hp, classes, hp_source_dir=hp_source_dir, cache=cache,
                           num_workers=num_workers)
    logger = TensorBoardLogger(save_dir=Path(model_dir) / "logs", name=hp["tb_experiment"],
                               version=run_name(hp, index), default_hp_metric=False)
    options: dict[str, Any] = dict(
        max_epochs=total_epochs(hp), logger=logger, callbacks=[EpochProgressBar()], enable_checkpointing=False,
        enable_model_summary=False, log_every_n_steps=10, num_sanity_val_steps=0, devices=1,
    )
    options.update(trainer_options or {})
    options["callbacks"] = [*options["callbacks"], EpochCheckpoint(resume_from)]
    trainer = L.Trainer(**options)
    with _quiet_lightning():
        trainer.fit(module, datamodule=data, ckpt_path=resume_from if resume_from.is_file() else None,
                    weights_only=True)
        model_file = save_unit(trainer, module, out_dir, hp, classes)
        metrics = trainer.test(module, datamodule=data, verbose=False)[0] if data.partitions["test"] else {}
    if metrics:
        logger.log_hyperparams(_loggable(hp), {f"hp/{k.replace('/', '_')}": v for k, v in metrics.items()})
        print_test_report(console, module.test_scores, module.test_targets, classes, hp["prediction_type"], metrics)
    else:
        log.warning("configuration %d: the label file has no test partition, nothing to evaluate", index)
    logger.finalize("success")
    console.print(f"model: {model_file}")
    console.print(f"report: {write_report(model_file, data_dir, label_file)}")
    return {"index": index, "model_file": model_file, "checkpoint": out_dir / CHECKPOINT_FILE, "skipped": False,
            "log_dir": log_dir, "test": {k: float(v) for k, v in metrics.items()},
            "test_scores": module.test_scores.numpy()}


def _loggable(hp: HParams) -> dict[str, Any]:
    """The hp as TensorBoard's hparams plugin accepts them (no None values)."""
    return {key: ("null" if value is None else value) for key, value in hp.items()}


def print_test_report(console: Console, scores: torch.Tensor, targets: torch.Tensor, classes: ClassConfig,
                      prediction_type: str, metrics: dict[str, float]) -> None:
    """Print the confusion matrix and classification report (categorical) or the error metrics (regression)."""
    console.rule("test partition (chunks)")
    if prediction_type == "regression":
        table = Table("metric", "value")
        for name, value in metrics.items():
            table.add_row(name.removeprefix("test/"), f"{float(value):.4f}")
        console.print(table)
        return
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(classes.num_classes))
    predicted = scores.argmax(dim=1).numpy()
    truth = targets.numpy()
    matrix = confusion_matrix(truth, predicted, labels=labels)
    # columns carry the short labels so that many classes still fit a terminal; rows add the names
    table = Table("true \\ predicted", *classes.labels, title="confusion matrix")
    for label, name, row in zip(classes.labels, classes.names, matrix):
        table.add_row(label if name == label else f"{label} ({name})", *(str(v) for v in row))
    console.print(table)
    console.print(classification_report(truth, predicted, labels=labels, target_names=list(classes.names),
                                        digits=3, zero_division=0))
    accuracy, uar = (100 * float(metrics[f"test/{name}"]) for name in ("accuracy", "uar"))
    console.print(f"accuracy {accuracy:.2f} %   UAR {uar:.2f} %")


# --- `dspl fit`: LightningCLI over the same module and data module, configured by the hp/class config files ---

def _load_configs(hp_config: str, class_config: str, config_index: int) -> tuple[HParams, ClassConfig]:
    """One checked configuration of a grid file and its class config."""
    hp = load_config(hp_config, config_index)
    classes = load_class_config(class_config)
    check_class_config(classes, hp["prediction_type"], class_config)
    return hp, classes


class ConfigFileModule(DsplModule):
    """DsplModule built from an hp config file (configuration ``config_index`` of its grid) and a class config."""

    def __init__(self, hp_config: str, class_config: str, config_index: int = 0, pretrained: bool = True,
                 channels_last: bool = True, mixed_precision: bool = True) -> None:
        """The model of one configuration.

        Args:
            hp_config: DeepSpectrumLite hp config (JSON grid of hyper-parameters).
            class_config: JSON object mapping class labels to names.
            config_index: which configuration of the grid to train (file order, last key fastest).
            pretrained: load the backbone's `weights` (false when a checkpoint restores every weight).
            channels_last: train in channels_last memory format where the device gains (models/speed.py).
            mixed_precision: train with bf16 autocast where the GPU has bf16 tensor cores (models/speed.py).
        """
        hp, classes = _load_configs(hp_config, class_config, config_index)
        super().__init__(hp, classes.to_dict(), pretrained=pretrained, channels_last=channels_last,
                         mixed_precision=mixed_precision)


class ConfigFileDataModule(AudioDataModule):
    """AudioDataModule for a label file, with the hp and class config read from their files."""

    def __init__(self, data_dir: str, label_file: str, hp_config: str, class_config: str, config_index: int = 0,
                 cache: bool = True, num_workers: int = 0) -> None:
        """The audio of one configuration, chunked and cached.

        Args:
            data_dir: directory of the audio files the label file names.
            label_file: CSV of file names and labels (partitions from the parser, e.g. train_/devel_/test_ prefixes).
            hp_config: linked from model.hp_config.
            class_config: linked from model.class_config.
            config_index: linked from model.config_index.
            cache: keep decoded audio in memory, so later epochs decode nothing.
            num_workers: DataLoader worker processes.
        """
        hp, classes = _load_configs(hp_config, class_config, config_index)
        super().__init__(data_dir, label_file, hp, classes, hp_source_dir=Path(hp_config).resolve().parent,
                         cache=cache, num_workers=num_workers)


class FitCLI(LightningCLI):
    """LightningCLI whose data module shares the model's config files, with max_epochs and seed from the hp."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for key in ("hp_config", "class_config", "config_index"):
            parser.link_arguments(f"model.{key}", f"data.{key}")
        parser.add_argument("--ckpt_path", type=Optional[str], default=None, help="Checkpoint to resume from.")

    def before_instantiate_classes(self) -> None:
        hp = load_config(self.config["model.hp_config"], self.config["model.config_index"])
        if self.config["trainer.max_epochs"] is None:
            self.config["trainer.max_epochs"] = total_epochs(hp)
        if self.config["trainer.strategy"] == "ddp" and uses_pretrained_weights(hp):
            # frozen backbone layers get no gradients: DDP must be told to expect unused parameters
            log.info("pretrained backbone (partly) frozen: using strategy ddp_find_unused_parameters_true")
            self.config["trainer.strategy"] = "ddp_find_unused_parameters_true"
        if self.config["seed_everything"] is False:
            self.config["seed_everything"] = L.seed_everything(hp["seed"], workers=True, verbose=False)


def fit(args: list[str] | None = None) -> Path | None:
    """Run `dspl fit` with LightningCLI arguments; rank 0 writes model.h5 into the trainer's log dir and returns it."""
    without_tensorflow()
    with _quiet_lightning():
        cli = FitCLI(ConfigFileModule, ConfigFileDataModule, args=args, run=False, seed_everything_default=False,
                     auto_configure_optimizers=False, load_from_checkpoint_support=False,
                     save_config_kwargs={"overwrite": True},
                     parser_kwargs={"prog": "dspl fit", "description": "Train a dspl model with LightningCLI."})
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config["ckpt_path"])
    out_dir = Path(cli.trainer.log_dir or cli.trainer.default_root_dir)  # under DDP a collective: every rank asks
    if not cli.trainer.is_global_zero:
        return None
    return save_model_file(out_dir / MODEL_FILE, cli.model.model, cli.model.hp, cli.model.classes,
                           cli.model.input_shape)
