"""One trial of a search: sample a configuration, train it as `train` does, export it, measure it.

The parameters come from Optuna (`suggest`: a choice is categorical, a range a float or int, on a log scale or
in steps). The configuration is the space's, checked as a grid's. Training is `train_configuration` into the
folder of configuration <trial> (a retry uses its first trial's folder, so it resumes that trial's last epoch;
a folder whose model is complete is not trained again), with the devel metric reported to the study's
single-objective twin after every epoch, whose pruner may stop it. The model is then exported by the Exporter
(end-to-end, with the requested quantisation, every step verified) into `<model folder>/export/`, and the
end-to-end model's size and median latency per chunk are measured with dspl's one latency measurement. Budgets
become Optuna constraints (value - budget <= 0 is feasible), and so does the export's agreement contract: a model
whose quantised scores agree with its float ones on fewer than 98 % of the chunks (`dspl export` would refuse it)
ends a complete but infeasible trial, so the sampler learns which regions of the space do not quantise faithfully
(a failed trial would teach it nothing); its export folder is removed, its figures stay in the study.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
import optuna
from lightning.pytorch.callbacks import Callback
from rich.console import Console

from dspl.config import ClassConfig, SearchSpace
from dspl.errors import DsplError
from dspl.export import verify
from dspl.export.exporter import ExportOptions
from dspl.export.inputs import InputSources
from dspl.export.report import end_to_end_step
from dspl.export.tflite_stats import measure_latency
from dspl.files import remove, write_atomically
from dspl.report.curves import damaged_event_files, read_scalars
from dspl.workflows.callbacks import EpochProgressBar
from dspl.workflows.console import make_console
from dspl.workflows.export import export_model
from dspl.workflows.search_summary import MARKER_FILE, Budget
from dspl.workflows.search_workers import origin
from dspl.workflows.train import (
    COMPLETE,
    EPOCH_CHECKPOINT_FILE,
    MODEL_FILE,
    RESUME,
    TrainingData,
    TrainOptions,
    output_dirs,
    plan_configuration,
    train_configuration,
)

EXPORT_DIR = "export"
# user attributes of a finished trial (what trials.csv shows besides the parameters)
METRIC, TEST_METRIC, LATENCY, SIZE, AGREEMENT, MODEL, TFLITE = "devel_metric", "test_metric", "latency_ms", \
    "size_kb", "agreement", "model", "tflite"


@dataclass
class TrialSetup:
    """What every trial of one search shares: the space, classes, data, output folder, budget, quantisation,
    training options, the study's name and summary folder (for each model's marker file) and the console."""

    space: SearchSpace
    classes: ClassConfig
    data: TrainingData
    model_dir: Path
    budget: Budget
    quantize: str
    study_name: str
    summary_dir: Path
    options: TrainOptions = field(default_factory=TrainOptions)
    console: Console = field(default_factory=Console)


@dataclass(frozen=True)
class TrialResult:
    """A finished trial's figures: devel (and test) metric, latency, size, the quantised model's agreement with
    its float model, its Optuna constraints (all <= 0: feasible), and where its models are (``tflite`` None: its
    export was removed as unfaithful)."""

    metric: float
    test_metric: float | None
    latency_ms: float
    size_kb: float
    agreement: float
    constraints: dict[str, float]
    model_file: Path
    tflite: Path | None

    @property
    def faithful(self) -> bool:
        return verify.faithful(self.agreement)

    @property
    def values(self) -> list[float]:
        """The objectives in the study's order: metric up, latency down, size down."""
        return [self.metric, self.latency_ms, self.size_kb]


def metric_name(categorical: bool) -> str:
    """The devel metric a search maximises: UAR for classification, CCC for regression."""
    return "uar" if categorical else "ccc"


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """The trial's value of every searched key, sampled (or fixed, for a retry) by Optuna."""
    values: dict[str, Any] = {name: trial.suggest_categorical(name, list(options))
                              for name, options in space.choices.items()}
    for name, span in space.ranges.items():
        if span.integer:
            values[name] = trial.suggest_int(name, int(span.low), int(span.high), step=int(span.step or 1),
                                             log=span.log)
        else:
            values[name] = trial.suggest_float(name, span.low, span.high, step=span.step, log=span.log)
    return values


class DevelReport(Callback):
    """Reports the devel metric after every validation to the trial's twin and stops a trial its pruner prunes."""

    def __init__(self, devel_trial: optuna.Trial, metric: str) -> None:
        self.devel_trial, self.tag = devel_trial, f"val/{metric}"

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.tag not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        self.devel_trial.report(float(trainer.callback_metrics[self.tag]), epoch)
        if self.devel_trial.should_prune():
            raise optuna.TrialPruned(f"devel {self.tag.removeprefix('val/').upper()} after epoch {epoch + 1} is "
                                     "among the worst of the trials so far")


def logged_metric(log_dir: Path, metric: str) -> tuple[float, float | None]:
    """The last devel and test figures of ``metric`` in a run's TensorBoard logs (the test one None if not logged);
    a DsplError without a devel figure, naming the event files that TensorBoard's reader stopped in."""
    scalars = read_scalars(log_dir)
    if f"val/{metric}" not in scalars:
        damage = damaged_event_files(log_dir)
        cause = f"; {'; '.join(damage)}" if damage else " (is the devel partition empty?)"
        raise DsplError(f"{log_dir}: no devel {metric.upper()} in the run's TensorBoard logs{cause}")
    test = scalars[f"test/{metric}"][-1][1] if f"test/{metric}" in scalars else None
    return scalars[f"val/{metric}"][-1][1], test


def run_trial(trial: optuna.Trial, devel_trial: optuna.Trial, setup: TrialSetup) -> TrialResult:
    """Train, export and measure one trial; sets its constraints and user attributes and returns its figures.

    Raises optuna.TrialPruned when pruned (its epoch checkpoint is removed: a pruned trial is final) and a
    DsplError when its configuration, training or export fails.
    """
    index = origin(trial)
    config = setup.space.configuration(suggest(trial, setup.space), f"trial {trial.number}")
    if config.training.total_epochs <= 0:
        raise DsplError(f"{setup.space.source} (trial {trial.number}): pre_epochs + epochs is 0, expected at "
                        "least one epoch to train")
    log_dir, out_dir = output_dirs(setup.model_dir, config, index)
    metric = metric_name(config.categorical)
    plan = plan_configuration(setup.model_dir, config, index)
    if plan == RESUME:
        setup.console.print(f"trial {trial.number}: resuming configuration {index} from its last epoch checkpoint")
    if plan != COMPLETE:
        callbacks = [*setup.options.trainer_options.get("callbacks", [EpochProgressBar()]),
                     DevelReport(devel_trial, metric)]
        options = replace(setup.options, trainer_options={**setup.options.trainer_options, "callbacks": callbacks})
        try:
            train_configuration(index, config, setup.classes, setup.data, setup.model_dir, options,
                                make_console(quiet=True))
        except optuna.TrialPruned:
            (out_dir / EPOCH_CHECKPOINT_FILE).unlink(missing_ok=True)
            raise
    devel, test = logged_metric(log_dir, metric)
    model_file = out_dir / MODEL_FILE
    for name, value in ((METRIC, devel), (TEST_METRIC, test), (MODEL, str(model_file))):
        trial.set_user_attr(name, value)  # kept if the export fails: which models do not quantise faithfully
    result = _export_and_measure(model_file, out_dir / EXPORT_DIR, setup, devel, test)
    for name, value in result.constraints.items():
        trial.set_constraint(name, value)
    for name, value in ((LATENCY, result.latency_ms), (SIZE, result.size_kb), (AGREEMENT, result.agreement),
                        (TFLITE, str(result.tflite or ""))):
        trial.set_user_attr(name, value)
    marker = {"study": setup.study_name, "trial": trial.number,
              "summary": os.path.relpath(setup.summary_dir.resolve(), out_dir.resolve())}
    write_atomically(out_dir / MARKER_FILE, json.dumps(marker, indent=2).encode())
    return result


def _export_and_measure(model_file: Path, export_dir: Path, setup: TrialSetup, devel: float,
                        test: float | None) -> TrialResult:
    """Export the trial's model end to end (verified, but an unfaithful quantisation measured rather than refused),
    measure the end-to-end model, and remove the export again if it is not faithful."""
    sources = InputSources(data_dir=setup.data.data_dir, label_file=setup.data.label_file)
    exported = export_model(model_file, export_dir,
                            ExportOptions(formats=("tflite",), quantize=(setup.quantize,), end_to_end=True,
                                          inputs=sources, min_agreement=0.0))
    tflite: Path | None = exported.files[end_to_end_step(setup.quantize)]
    agreement = exported.report.agreement(setup.quantize)
    latency, size = measure_latency(tflite)["median_ms"], tflite.stat().st_size / 1000.0
    constraints = {**setup.budget.constraints(latency, size), AGREEMENT: verify.MIN_AGREEMENT - agreement}
    if not verify.faithful(agreement):
        remove(export_dir)
        tflite = None
    return TrialResult(devel, test, latency, size, agreement, constraints, model_file, tflite)
