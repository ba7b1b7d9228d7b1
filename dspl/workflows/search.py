"""`search`: the most accurate model within a device budget, found by Optuna over a DeepSpectrumLite-style space.

One call is one worker: it creates or joins the study (dspl.workflows.search_study), then, until the study's
queue is empty, retries the trials of workers that are gone (search_workers), takes the next trial, trains,
exports and measures it (search_trial), tells Optuna the objectives (devel metric up, latency and size down;
budgets and the quantised model's faithfulness as constraints) and rewrites the summary (search_summary). Several
workers — processes, SLURM array tasks running the same command — share one study through its storage. The
worker that finds nothing left to run writes the best feasible model's report and copies its folder to best/.

Sampling is Optuna's TPE (multi-objective, constraint-aware, with the constant liar so that parallel workers
spread out; its first trials are random). Pruning: Optuna prunes single-objective studies only, so each trial
reports its devel metric per epoch to a single-objective twin study with a PercentilePruner, which stops a
trial in the worst quarter of the trials at the same epoch (never in the first epochs, nor before a few trials
finished): a multi-objective search should not stop a fast, small model for being only average.
"""

from __future__ import annotations

import logging
import math
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import optuna
from optuna.trial import TrialState
from rich.console import Console

from dspl.config import ClassConfig, RunConfig, check_class_config, load_class_config, load_space
from dspl.config.keys import path_component
from dspl.errors import DsplError
from dspl.export.tflite_convert import check_quantization, less_quantised
from dspl.export.verify import MIN_AGREEMENT
from dspl.files import clean_stale_work_dirs, prepare_output_dir
from dspl.workflows.console import make_console
from dspl.workflows.report import write_report
from dspl.workflows.search_study import (
    DEVEL_SUFFIX,
    SURPLUS_ATTR,
    SearchCommand,
    SharedStudy,
    describe_storage,
    open_storage,
    open_study,
    study_exists,
    take_trial,
)
from dspl.workflows.search_summary import (
    TRIALS_FILE,
    Budget,
    SearchInfo,
    TrialRow,
    best_row,
    describe_metric,
    fastest_row,
    publish_best,
    published_best,
    write_summary,
)
from dspl.workflows.search_trial import (
    AGREEMENT,
    LATENCY,
    METRIC,
    MODEL,
    SIZE,
    TEST_METRIC,
    TFLITE,
    TrialResult,
    TrialSetup,
    metric_name,
    run_trial,
)
from dspl.workflows.search_workers import ERROR, RETRY_OF, Heartbeat, release_stale_trials
from dspl.workflows.train import TrainingData, TrainOptions, output_dirs

log = logging.getLogger(__name__)

SEARCH_DIR = "search"
JOURNAL_FILE = "journal.log"
DEVEL_TRIAL_ATTR = "dspl_devel_trial"
STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running"}
"""The states trials.csv shows (queued trials are not trials yet)."""
PRUNE_PERCENTILE, PRUNE_STARTUP_TRIALS, PRUNE_WARMUP_EPOCHS = 25.0, 4, 2
RANDOM_TRIALS_MAX = 10
"""TPE starts with a third of the trials (at most this many, at least 2) drawn at random."""
MAX_TRIALS = 10_000
"""Trials are queued in the storage up front: a typo of 10**20 would fill it for ever."""


@dataclass(frozen=True)
class SearchOptions:
    """How a search runs: ``trials`` in total over all workers, the device ``budget``, the TFLite quantisation the
    models are measured in, the Optuna ``storage`` (a journal file path or an RDB URL; default
    OUT/search/journal.log), the ``study`` name (default <tb_experiment>_<tb_run_id>) and the training options."""

    trials: int = 20
    budget: Budget = field(default_factory=Budget)
    quantize: str = "int8"
    storage: str | None = None
    study: str | None = None
    train: TrainOptions = field(default_factory=TrainOptions)


@dataclass
class SearchResult:
    """What a worker leaves: the study's name, its summary folder, every started trial, the best feasible one
    (None if none is), and whether the whole study is finished (no trial queued or running)."""

    study: str
    summary_dir: Path
    rows: list[TrialRow]
    best: TrialRow | None
    finished: bool


def trial_rows(study: optuna.Study, searched: tuple[str, ...]) -> list[TrialRow]:
    """Every started trial of the study (not the queued ones, nor surplus ones), by number."""
    front = {trial.number for trial in study.best_trials}
    rows = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state not in STATES or trial.system_attrs.get(SURPLUS_ATTR):
            continue
        attrs = trial.user_attrs
        complete = trial.state == TrialState.COMPLETE
        rows.append(TrialRow(
            trial.number, STATES[trial.state], attrs.get(RETRY_OF), {k: trial.params.get(k) for k in searched},
            attrs.get(METRIC), attrs.get(TEST_METRIC), attrs.get(LATENCY), attrs.get(SIZE), attrs.get(AGREEMENT),
            all(v <= 0 for v in trial.constraints.values()) if complete else None, trial.number in front,
            attrs.get(MODEL, ""), attrs.get(TFLITE, ""), attrs.get(ERROR, "")))
    return sorted(rows, key=lambda row: row.number)


def _check_options(options: SearchOptions) -> None:
    """A DsplError naming the flag of a bad option."""
    if not 1 <= options.trials <= MAX_TRIALS:
        raise DsplError(f"--trials: value {options.trials}: expected a number from 1 to {MAX_TRIALS}")
    check_quantization(options.quantize, "--quantize")
    for flag, value in (("--max-latency-ms", options.budget.max_latency_ms),
                        ("--max-size-kb", options.budget.max_size_kb)):
        if value is not None and not 0 < value < math.inf:
            raise DsplError(f"{flag}: value {value}: expected a finite number > 0 (leave the flag out for no budget)")
    if options.study is not None and path_component(options.study):
        raise DsplError(f"--study: value '{options.study}': expected {path_component(options.study)}")


def _check_new_study_folders(model_dir: Path, config: RunConfig) -> None:
    """A new study trains into configurations 0, 1, ... of its tb_run_id: refuse if a run left such folders."""
    models = output_dirs(model_dir, config, 0)[1].parent
    run = config.experiment.tb_run_id
    earlier = sorted(models.glob(f"{run}_config_*")) if models.is_dir() else []
    if earlier:
        raise DsplError(f"{earlier[0]}: holds a model of an earlier run (train or another search), and a new study "
                        f"trains into {run}_config_<trial>; use another tb_run_id, or another -md than {model_dir}")


def _progress(console: Console, done: int, total: int, trial: optuna.Trial, text: str, best: TrialRow | None,
              metric: str) -> None:
    """The line a worker prints per trial: n/N, what the trial gave, the best feasible trial so far."""
    so_far = "none feasible yet" if best is None else (
        f"trial {best.number} ({describe_metric(metric, best.metric)}, {best.latency_ms:.3g} ms, "
        f"{best.size_kb:.0f} kB)")
    console.print(f"[{done}/{total}] trial {trial.number}: {text}; best so far: {so_far}")


def _run_one(trial: optuna.Trial, shared: SharedStudy, setup: TrialSetup, metric: str) -> str:
    """Run one trial under its heartbeat and tell Optuna its end; returns what it gave, for the progress line."""
    devel_trial = shared.devel.ask()
    shared.storage.set_trial_system_attr(trial._trial_id, DEVEL_TRIAL_ATTR, devel_trial._trial_id)
    result, state = None, TrialState.COMPLETE
    with Heartbeat(shared.storage, trial._trial_id):
        try:
            result = run_trial(trial, devel_trial, setup)
        except optuna.TrialPruned as exc:
            state, text = TrialState.PRUNED, f"pruned ({exc})"
            _keep_pruned_figures(shared, trial, devel_trial, str(exc))
        except Exception as exc:  # one trial's failure (a DsplError, or a backbone that crashes) ends that trial
            # only; its message goes to trials.csv, the traceback to the debug log (-vv)
            log.debug("trial %d failed", trial.number, exc_info=True)
            message = " ".join(str(exc).split()) or type(exc).__name__
            state, text = TrialState.FAIL, f"failed: {message}"
            with suppress(optuna.exceptions.UpdateFinishedTrialError):
                trial.set_user_attr(ERROR, message)
    if result is not None:
        text = f"{describe_metric(metric, result.metric)}, {result.latency_ms:.3g} ms, {result.size_kb:.0f} kB"
        if setup.budget.is_set:
            text += ", within budget" if setup.budget.within(result.latency_ms, result.size_kb) else ", over budget"
        if not result.faithful:
            text = (f"{text}; infeasible: its {setup.quantize} model agrees with the float model on "
                    f"{100 * result.agreement:.1f} % of the chunks, below {100 * MIN_AGREEMENT:.0f} % (export removed)")
    if not _tell(shared, trial, devel_trial, state, result):
        text += "; but another worker had given it up for lost (missed heartbeats) and queued it again"
    return text


def _keep_pruned_figures(shared: SharedStudy, trial: optuna.Trial, devel_trial: optuna.Trial, why: str) -> None:
    """A pruned trial's row in trials.csv: its devel metric at the epoch it was stopped, and why it was."""
    reported = shared.storage.get_trial(devel_trial._trial_id).intermediate_values
    with suppress(optuna.exceptions.UpdateFinishedTrialError):  # another worker gave it up for lost meanwhile
        if reported:
            trial.set_user_attr(METRIC, reported[max(reported)])
        trial.set_user_attr(ERROR, f"pruned: {why}")


def _tell(shared: SharedStudy, trial: optuna.Trial, devel_trial: optuna.Trial, state: TrialState,
          result: TrialResult | None) -> bool:
    """Tell the study and its devel twin how a trial ended; False when another worker had failed it first."""
    try:
        shared.devel.tell(devel_trial, None if result is None else result.metric,
                          state=None if result is not None else state, skip_if_finished=True)
        told = shared.study.tell(trial, None if result is None else result.values,
                                 state=None if result is not None else state, skip_if_finished=True)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    return told.state == state


def _release(shared: SharedStudy, console: Console) -> None:
    """Fail the trials of workers that are gone (and their devel twins) and queue their retries."""
    for trial, reason in release_stale_trials(shared.study, shared.storage):
        twin = trial.system_attrs.get(DEVEL_TRIAL_ATTR)
        if twin is not None:
            try:
                shared.storage.set_trial_state_values(twin, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                pass
        console.print(f"trial {trial.number}: {reason}; queued again, to resume where it stopped")


def search(data: TrainingData, model_dir: str | Path, space_file: str | Path, class_config: str | Path,
           options: SearchOptions = SearchOptions(), console: Console | None = None) -> SearchResult:
    """Run one worker of the search ``options`` describe over the space in ``space_file`` (see the module
    docstring) and return what the study holds when this worker stops.

    A DsplError refuses bad input before anything is written into an earlier study, and ends a finished study
    in which no trial met the budget (naming the fastest trial's figures).
    """
    console = console or make_console()
    _check_options(options)
    space = load_space(space_file)
    first = space.first()
    classes: ClassConfig = load_class_config(class_config)
    check_class_config(classes, first.prediction_type, str(class_config))
    name = options.study or f"{first.experiment.tb_experiment}_{first.experiment.tb_run_id}"
    if name.endswith(DEVEL_SUFFIX):
        raise DsplError(f"study '{name}': a name ending in '{DEVEL_SUFFIX}' names the pruning twin of study "
                        f"'{name.removesuffix(DEVEL_SUFFIX)}': pass another --study")
    model_dir = prepare_output_dir(model_dir, "model directory (-md)").resolve()
    summary_dir = model_dir / SEARCH_DIR / name
    storage_text = options.storage or str(prepare_output_dir(model_dir / SEARCH_DIR) / JOURNAL_FILE)
    where = describe_storage(storage_text)
    storage = open_storage(storage_text)
    command = SearchCommand(space.to_json(), str(data.data_dir.resolve()), str(data.label_file.resolve()),
                            classes.to_dict(), str(model_dir.resolve()), options.trials, options.budget.max_latency_ms,
                            options.budget.max_size_kb, options.quantize)
    if not study_exists(storage, name):
        _check_new_study_folders(model_dir, first)
    _quiet_optuna()
    sampler = optuna.samplers.TPESampler(
        n_startup_trials=max(2, min(RANDOM_TRIALS_MAX, options.trials // 3)), constant_liar=True)
    pruner = optuna.pruners.PercentilePruner(PRUNE_PERCENTILE, n_startup_trials=PRUNE_STARTUP_TRIALS,
                                             n_warmup_steps=PRUNE_WARMUP_EPOCHS)
    shared = open_study(storage, name, command, where, sampler, pruner)
    clean_stale_work_dirs()
    metric = metric_name(first.categorical)
    info = SearchInfo(name, where, metric, options.budget, options.quantize, options.trials,
                      searched=list(space.searched))
    setup = TrialSetup(space, classes, data, model_dir, options.budget, options.quantize, name, summary_dir,
                       options.train, console)
    console.print(f"study '{name}' in {where}: {'created' if shared.created else 'joined'}; {options.trials} "
                  f"trials over {len(space.searched)} searched key(s), budget {options.budget.describe()}, "
                  f"{options.quantize} models")
    while True:
        _release(shared, console)
        trial = take_trial(shared)
        if trial is None:
            break
        console.rule(f"trial {trial.number}")
        text = _run_one(trial, shared, setup, metric)
        rows = trial_rows(shared.study, space.searched)
        write_summary(rows, replace(info, best=_number(best_row(rows))), summary_dir)
        _progress(console, _done(shared, options.trials), options.trials, trial, text, best_row(rows), metric)
    return _finish(shared, info, setup, console)


def _number(row: TrialRow | None) -> int | None:
    return None if row is None else row.number


def _done(shared: SharedStudy, total: int) -> int:
    """Trials finished for good: the queue's total less what is queued or running."""
    return total - len(shared.study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING)))


def _quiet_optuna() -> None:
    """Optuna's per-trial log lines only with -v (dspl prints its own progress line)."""
    verbose = logging.getLogger("dspl").getEffectiveLevel() <= logging.INFO
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)


def _why_no_best(rows: list[TrialRow], info: SearchInfo, table: Path) -> str:
    """Why a finished study has no best trial: none completed, none quantised faithfully, or none met the budget
    (naming the fastest faithful trial's figures, and the trials within it whose quantised model is unfaithful)."""
    complete = [row for row in rows if row.complete]
    if not complete:
        failed = next((row for row in rows if row.error), None)
        reason = f"; trial {failed.number}: {failed.error}" if failed else ""
        return f"study '{info.study}': no trial completed{reason}"
    faithful = [row for row in complete if row.faithful]
    if not faithful:
        closest = max(complete, key=lambda row: row.agreement)
        lighter = less_quantised(info.quantize)
        remedy = f"quantise less (--quantize {' or '.join(lighter)}) or search" if lighter else "search"
        return (f"study '{info.study}': no trial's {info.quantize} model agrees with its float model on "
                f"{100 * MIN_AGREEMENT:.0f} % of the chunks as `dspl export` requires (the closest, trial "
                f"{closest.number}: {100 * closest.agreement:.1f} %); {remedy} other backbones; see {table}")
    fastest = fastest_row(faithful)
    head = f"study '{info.study}': no trial met the budget ({info.budget.describe()})"
    unfaithful = [row for row in complete if not row.faithful and info.budget.within(row.latency_ms, row.size_kb)]
    if not unfaithful:
        return (f"{head}; the fastest, trial {fastest.number}, takes {fastest.latency_ms:.3g} ms per chunk and "
                f"{fastest.size_kb:.0f} kB ({info.quantize}); see {table}")
    closest = max(unfaithful, key=lambda row: row.agreement)
    return (f"{head} with a faithful {info.quantize} model; the fastest faithful trial, {fastest.number}, takes "
            f"{fastest.latency_ms:.3g} ms per chunk and {fastest.size_kb:.0f} kB; {len(unfaithful)} within the budget "
            f"agree with their float models on less than {100 * MIN_AGREEMENT:.0f} % of the chunks (the closest, "
            f"trial {closest.number}: {100 * closest.agreement:.1f} %); see {table}")


def _finish(shared: SharedStudy, info: SearchInfo, setup: TrialSetup, console: Console) -> SearchResult:
    """Write the final summary; the worker that finds the study finished publishes the best model (its report and
    best/), or ends with the error that no trial met the budget."""
    rows = trial_rows(shared.study, tuple(info.searched))
    best = best_row(rows)
    write_summary(rows, replace(info, best=_number(best)), setup.summary_dir)
    running = shared.study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    result = SearchResult(info.study, setup.summary_dir, rows, best, finished=not running)
    if running:
        console.print(f"no trial left to start; {len(running)} still running on other workers (the last of them to "
                      f"finish writes best/): {setup.summary_dir}")
        return result
    if best is None:
        raise DsplError(_why_no_best(rows, info, setup.summary_dir / TRIALS_FILE))
    if published_best(setup.summary_dir) != best.number:  # a re-run of a finished search publishes nothing again
        write_report(best.model, setup.data.data_dir, setup.data.label_file)
        publish_best(best, setup.summary_dir)
    console.print(f"best within budget: trial {best.number}, {describe_metric(info.metric, best.metric)}, "
                  f"{best.latency_ms:.3g} ms, {best.size_kb:.0f} kB: {best.model} (report: "
                  f"{Path(best.model).parent / 'report' / 'index.html'}); summary and a copy of the model in "
                  f"{setup.summary_dir}")
    return result
