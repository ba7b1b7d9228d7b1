"""The `train` job: one model per grid configuration in DeepSpectrumLite's output layout, resumable.

Every configuration of the grid (or the one SLURM_ARRAY_TASK_ID names) is planned first (train, resume, skip as
complete, or restart), then trained, saved (model.h5 + model.ckpt as one unit) and tested in turn. A re-run of
the same command resumes: a configuration whose model.h5 holds it is skipped, one interrupted after an epoch
continues from its epoch checkpoint. `dspl fit` (LightningCLI) is dspl.workflows.fit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
from lightning.pytorch.loggers import TensorBoardLogger
from rich.console import Console

from dspl.config import ClassConfig, RunConfig, check_class_config, load_class_config, load_grid, select_configurations
from dspl.data.datamodule import AudioDataModule
from dspl.errors import DsplError, Interrupted, interruption
from dspl.files import (
    clean_stale,
    clean_stale_work_dirs,
    commit,
    exclusive_lock,
    naming,
    prepare_output_dir,
    remove,
    temporary_path,
)
from dspl.models.modelfile import read_checkpoint, read_model_file, save_model_file
from dspl.models.module import DsplModule
from dspl.tensorboard import without_tensorflow
from dspl.workflows.callbacks import EpochCheckpoint, EpochProgressBar, interrupts_raised, quiet_lightning
from dspl.workflows.console import make_console
from dspl.workflows.metrics_report import print_test_report

log = logging.getLogger(__name__)

MODEL_FILE = "model.h5"
CHECKPOINT_FILE = "model.ckpt"
EPOCH_CHECKPOINT_FILE = "last.ckpt"
LOCK_FILE = ".dspl-train.lock"
# What TensorBoardLogger writes into a run's log folder: all that --restart removes there.
LOG_FILE_PATTERNS = ("events.out.tfevents.*", "hparams.yaml")
TRAIN, RESUME, COMPLETE, RESTART = "train", "resume", "complete", "restart"


@dataclass(frozen=True)
class TrainOptions:
    """How `train` runs: ``restart`` trains every selected configuration from scratch, replacing what its folders
    hold (TensorBoard events included); ``cache`` keeps decoded audio in memory; ``channels_last`` and
    ``mixed_precision`` allow the training device's speed-ups (models/speed.py); ``trainer_options`` go to
    ``lightning.Trainer`` (e.g. accelerator, devices, precision) over dspl's defaults."""

    restart: bool = False
    cache: bool = True
    num_workers: int = 0
    channels_last: bool = True
    mixed_precision: bool = True
    trainer_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConfigurationResult:
    """One configuration's outcome: its index, where its model, checkpoint and logs are, whether it was skipped
    as complete, its test metrics and the test partition's chunk scores (label file order; None when skipped)."""

    index: int
    model_file: Path
    checkpoint: Path
    log_dir: Path
    skipped: bool = False
    test: dict[str, float] = field(default_factory=dict)
    test_scores: np.ndarray | None = None


@dataclass(frozen=True)
class TrainingData:
    """The audio directory and the label file a grid trains on."""

    data_dir: Path
    label_file: Path


def run_name(config: RunConfig, index: int) -> str:
    """The per-configuration directory name DeepSpectrumLite used: <tb_run_id>_config_<i>."""
    return f"{config.experiment.tb_run_id}_config_{index}"


def output_dirs(model_dir: str | Path, config: RunConfig, index: int) -> tuple[Path, Path]:
    """(TensorBoard log dir, model dir) of configuration ``index`` under ``model_dir``."""
    model_dir, experiment, name = Path(model_dir), config.experiment.tb_experiment, run_name(config, index)
    return model_dir / "logs" / experiment / name, model_dir / "models" / experiment / name


def train(data: TrainingData, model_dir: str | Path, hp_config: str | Path, class_config: str | Path,
          options: TrainOptions = TrainOptions(), console: Console | None = None,
          on_result: Callable[[ConfigurationResult], None] | None = None) -> list[ConfigurationResult]:
    """Train every configuration of the grid (or the one SLURM_ARRAY_TASK_ID names); one result per configuration.

    Every configuration is checked before the first one trains. ``on_result`` is called with each configuration's
    result as soon as it is there (the `train` command writes the model's report from it). One run at a time per
    model directory: a second one is refused. Ctrl-C or SIGTERM ends in an Interrupted error that says what was kept.
    """
    hp_config = Path(hp_config)
    configs = load_grid(hp_config)
    classes = load_class_config(class_config)
    selected = select_configurations(configs)
    for index, config in selected:
        check_class_config(classes, config.prediction_type, str(class_config))
        if config.training.total_epochs <= 0:
            raise DsplError(f"{hp_config} (configuration {index}): pre_epochs + epochs is 0, expected at least "
                            "one epoch to train")
    prepare_output_dir(model_dir, "model directory (-md)")
    with exclusive_lock(Path(model_dir) / LOCK_FILE, "another dspl train"):
        clean_stale_work_dirs()
        plans = [(index, config, plan_configuration(model_dir, config, index, options.restart))
                 for index, config in selected]
        return _run_plans(plans, len(configs), classes, data, model_dir, options, console or make_console(), on_result)


def _run_plans(plans: list[tuple[int, RunConfig, str]], grid_size: int, classes: ClassConfig, data: TrainingData,
               model_dir: str | Path, options: TrainOptions, console: Console,
               on_result: Callable[[ConfigurationResult], None] | None) -> list[ConfigurationResult]:
    """Carry out the planned configurations in turn (see train)."""
    results: list[ConfigurationResult] = []
    for index, config, plan in plans:
        console.rule(f"configuration {index} ({grid_size} in the grid): {run_name(config, index)}")
        log_dir, out_dir = output_dirs(model_dir, config, index)
        if plan == COMPLETE:
            console.print(f"configuration {index}: complete ({out_dir / MODEL_FILE}), skipped; "
                          "--restart trains it again")
            result = ConfigurationResult(index, out_dir / MODEL_FILE, out_dir / CHECKPOINT_FILE, log_dir, skipped=True)
        else:
            if plan == RESTART:
                _remove_run(log_dir, out_dir)
            try:
                result = train_configuration(index, config, classes, data, model_dir, options, console)
            except KeyboardInterrupt as exc:
                name, status = interruption(exc)
                raise Interrupted(_interrupted_message(index, out_dir, len(results), name), status) from None
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _interrupted_message(index: int, out_dir: Path, finished: int, name: str) -> str:
    """What an interruption (``name``: Ctrl-C, SIGTERM) during configuration ``index`` kept (its saved model, or
    its last epoch checkpoint, or nothing of it) and how to go on: the same command again, which resumes."""
    earlier = f"; the {finished} configuration(s) before it are complete" if finished else ""
    if (out_dir / MODEL_FILE).is_file() and not (out_dir / EPOCH_CHECKPOINT_FILE).exists():
        kept = f"its model was saved ({out_dir / MODEL_FILE})"
    elif (out_dir / EPOCH_CHECKPOINT_FILE).is_file():
        kept = f"kept its last epoch checkpoint {out_dir / EPOCH_CHECKPOINT_FILE}"
    else:
        kept = "no epoch of it had finished, nothing of it was kept"
    return f"interrupted ({name}) in configuration {index}: {kept}{earlier}; re-run the same command to resume"


def _differing_key(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first key whose value differs between two configurations' values (compared as JSON), or None."""
    return next((key for key in dict.fromkeys([*current, *stored])
                 if json.dumps(stored.get(key), sort_keys=True) != json.dumps(current.get(key), sort_keys=True)),
                None)


def plan_configuration(model_dir: str | Path, config: RunConfig, index: int, restart: bool = False) -> str:
    """What a run does with configuration ``index``: TRAIN, RESUME, COMPLETE (skip) or RESTART.

    Finishes a killed run's commit and removes its leftovers first. A DsplError refuses a folder that holds
    another configuration's model or checkpoint (unless ``restart``).
    """
    _, out_dir = output_dirs(model_dir, config, index)
    clean_stale(out_dir)
    if restart:
        return RESTART
    values = config.to_dict()
    for name, read in ((MODEL_FILE, read_model_file), (EPOCH_CHECKPOINT_FILE, read_checkpoint)):
        path = out_dir / name
        if not path.exists():
            continue
        stored = read(path).config.to_dict()
        key = _differing_key(stored, values)
        if key is not None:
            raise DsplError(
                f"{path}: holds a model of another configuration (key '{key}' is {json.dumps(stored.get(key))} "
                f"there, {json.dumps(values.get(key))} in configuration {index}); use another -md or tb_run_id, or "
                "--restart to replace it")
        return COMPLETE if name == MODEL_FILE else RESUME
    return TRAIN


def _remove_run(log_dir: Path, out_dir: Path) -> None:
    """Forget a configuration's earlier run (--restart): the files dspl wrote for it (TensorBoard events and
    hparams, model, checkpoints), nothing else that its folders hold."""
    written = [path for pattern in LOG_FILE_PATTERNS for path in log_dir.glob(pattern) if path.is_file()]
    for path in [*written, *(out_dir / name for name in (MODEL_FILE, CHECKPOINT_FILE, EPOCH_CHECKPOINT_FILE))]:
        path.unlink(missing_ok=True)


def save_unit(trainer: L.Trainer, module: DsplModule, out_dir: Path) -> Path:
    """Write model.ckpt and model.h5 as one unit (both staged, then committed) and drop the epoch checkpoint."""
    staged_checkpoint, staged_model = temporary_path(out_dir / CHECKPOINT_FILE), temporary_path(out_dir / MODEL_FILE)
    try:
        with naming(out_dir / CHECKPOINT_FILE):
            trainer.save_checkpoint(staged_checkpoint, weights_only=False)
        with naming(out_dir / MODEL_FILE):
            save_model_file(staged_model, module.model, module.config, module.classes, module.input_shape)
        commit({staged_checkpoint: out_dir / CHECKPOINT_FILE, staged_model: out_dir / MODEL_FILE})
    finally:
        remove(staged_checkpoint)
        remove(staged_model)
    (out_dir / EPOCH_CHECKPOINT_FILE).unlink(missing_ok=True)
    return out_dir / MODEL_FILE


def train_configuration(index: int, config: RunConfig, classes: ClassConfig, data: TrainingData,
                        model_dir: str | Path, options: TrainOptions = TrainOptions(),
                        console: Console | None = None) -> ConfigurationResult:
    """Train, save (model.h5 + model.ckpt) and test one configuration.

    An epoch checkpoint of this configuration in its folder (a killed run) is resumed from.
    """
    console = console or make_console()
    log_dir, out_dir = output_dirs(model_dir, config, index)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_from = out_dir / EPOCH_CHECKPOINT_FILE
    if resume_from.is_file():
        epoch = read_checkpoint(resume_from).header["epoch"] + 1
        console.print(f"configuration {index}: resuming after epoch {epoch} of {config.training.total_epochs} "
                      f"({resume_from})")
    without_tensorflow()
    L.seed_everything(config.training.seed, workers=True, verbose=False)
    module = DsplModule(config, classes, channels_last=options.channels_last, mixed_precision=options.mixed_precision)
    datamodule = AudioDataModule(data.data_dir, data.label_file, config, classes, cache=options.cache,
                                 num_workers=options.num_workers)
    logger = TensorBoardLogger(save_dir=Path(model_dir) / "logs", name=config.experiment.tb_experiment,
                               version=run_name(config, index), default_hp_metric=False)
    trainer_options: dict[str, Any] = dict(
        max_epochs=config.training.total_epochs, logger=logger, callbacks=[EpochProgressBar()],
        enable_checkpointing=False, enable_model_summary=False, log_every_n_steps=10, num_sanity_val_steps=0,
        devices=1,
    )
    trainer_options.update(options.trainer_options)
    trainer_options["callbacks"] = [*trainer_options["callbacks"], EpochCheckpoint(resume_from)]
    trainer = L.Trainer(**trainer_options)
    # a write that names no file (TensorBoard's event writer) is about this configuration's outputs under -md
    with quiet_lightning(), interrupts_raised(), naming(model_dir):
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from if resume_from.is_file() else None,
                    weights_only=True)
        model_file = save_unit(trainer, module, out_dir)
        metrics = trainer.test(module, datamodule=datamodule, verbose=False)[0] if datamodule.partitions["test"] else {}
        if metrics:
            logger.log_hyperparams(_loggable(config), {f"hp/{k.replace('/', '_')}": v for k, v in metrics.items()})
        logger.finalize("success")
    if metrics:
        print_test_report(console, module.test_scores, module.test_targets, classes, config.categorical, metrics)
    else:
        log.warning("configuration %d: the label file has no test partition, nothing to evaluate", index)
    return ConfigurationResult(index, model_file, out_dir / CHECKPOINT_FILE, log_dir, False,
                               {k: float(v) for k, v in metrics.items()}, module.test_scores.numpy())


def _loggable(config: RunConfig) -> dict[str, Any]:
    """The configuration as TensorBoard's hparams plugin accepts it (no None values)."""
    return {key: ("null" if value is None else value) for key, value in config.to_dict().items()}
