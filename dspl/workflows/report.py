"""`report`: one HTML page per model that a user can hand on - what was trained, on what, how it learned,
how it scores, which files it is least sure of, its exports, and a few plots with their explanations.

Everything is read from what dspl already wrote beside the model: the configuration inside the model file,
the TensorBoard logs of the run (training curves, test metrics), `devel-test`'s evaluation files, any
`export_report.json` under the model's directory. Data counts and example explanations need the data
directory and label file. Missing parts are named on the page with the command that makes them; a found file
that cannot be used (hand-edited, damaged, not a regular file) is named on the page with what is wrong with it
(`_unusable`), and the rest of the page is still written. Nothing found is opened unless it is a regular file:
a FIFO would wait for a writer forever.
The page and its PNGs go to `<model dir>/report/`; it has no scripts and loads nothing from the web.
"""

from __future__ import annotations

import csv
import json
import math
import logging
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dspl.config import GivenConfigs, parse_json
from dspl.data.audio import find_audio_files, load_audio
from dspl.data.parsers import parse_label_file
from dspl.errors import DsplError
from dspl.explain.attribution import forward_cost
from dspl.explain.methods import DESCRIPTIONS
from dspl.explain.render import Panel, write_summary
from dspl.export.report import REPORT_FILE, ExportReport
from dspl.export.tflite_convert import make_interpreter
from dspl.export.tflite_stats import measure_latencies
from dspl.files import prepare_output_dir, regular_file, write_text_atomically
from dspl.latency import BUSY_WARNING_CPUS
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models.metrics import in_percent
from dspl.models.predictor import Predictor
from dspl.report import html
from dspl.report.curves import damaged_event_files, plot_curves, read_scalars
from dspl.report.pareto import plot_pareto
from dspl.version import __version__
from dspl.workflows.evaluate import majority_vote
from dspl.workflows.explain import explain_waveform
from dspl.workflows.progress import progress_bar
from dspl.workflows.search_summary import MARKER_FILE, metric_label, plot_points, read_summary, shown_metric

logger = logging.getLogger(__name__)

REPORT_DIR = "report"
PAGE = "index.html"
PARTITIONS = ("train", "devel", "test")
LEAST_CONFIDENT = 5
EXAMPLE_METHODS = ("occlusion", "gradcam")  # the sharpest on small plots first, then the cheapest
EXAMPLE_BUDGET_SECONDS = 20.0  # what the examples may cost before a cheaper method explains them


def run_log_dir(model_file: Path) -> Path:
    """The TensorBoard log dir of a model: `<md>/logs/<exp>/<run>` for `train`'s `<md>/models/<exp>/<run>/`,
    else the model's own directory (`dspl fit` writes model.h5 into its log dir)."""
    run = model_file.parent
    if run.parent.parent.name == "models":
        return run.parent.parent.parent / "logs" / run.parent.name / run.name
    return run


def _header(predictor: Predictor, model_file: Path) -> str:
    parameters = sum(p.numel() for p in predictor.model.parameters())
    kind = (f"{predictor.classes.num_classes} classes" if predictor.categorical
            else f"regression of {predictor.classes.labels[0]}")
    size = model_file.stat().st_size / 1e6
    written = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"{predictor.config.model.basemodel_name}, {kind}, {parameters:,} parameters, {size:.1f} MB "
            f"({model_file}); written {written} by dspl {__version__}")


def _configuration(predictor: Predictor) -> str:
    classes = html.table(["label", "name"], zip(predictor.classes.labels, predictor.classes.names), "classes")
    config = html.table(["key", "value"], ((k, json.dumps(v)) for k, v in predictor.config.to_dict().items()),
                        "hyper-parameters")
    return html.section("Configuration", classes, f"<details><summary>all hyper-parameters</summary>{config}</details>")


def _partitions(predictor: Predictor, label_file: Path | None, given: GivenConfigs) -> dict[str, list] | None:
    if label_file is None:
        return None
    return dict(zip(PARTITIONS, parse_label_file(label_file, given.label_parser(predictor.config))))


def _data(predictor: Predictor, partitions: dict[str, list] | None) -> str:
    if partitions is None:
        return html.section("Data", html.note("Pass -d DATA -l LABELS to `dspl report` for the counts."))
    if predictor.categorical:
        counts = {p: Counter(e.label for e in entries) for p, entries in partitions.items()}
        rows = [[f"{label} ({name})", *(counts[p][label] for p in PARTITIONS)]
                for label, name in zip(predictor.classes.labels, predictor.classes.names)]
        rows.append(["all", *(len(partitions[p]) for p in PARTITIONS)])
        return html.section("Data (files per partition and class)", html.table(["class", *PARTITIONS], rows))
    rows = []
    for p in PARTITIONS:
        values = np.array([float(e.label) for e in partitions[p]]) if partitions[p] else np.array([np.nan])
        rows.append([p, len(partitions[p]), float(np.mean(values)), float(np.std(values))])
    return html.section("Data (files per partition)", html.table(["partition", "files", "mean target", "std"], rows))


def _training(model_file: Path, out_dir: Path, categorical: bool) -> str:
    log_dir = run_log_dir(model_file)
    scalars = read_scalars(log_dir)
    damaged = [html.note(f"Damaged log: {problem}") for problem in damaged_event_files(log_dir)]
    if not scalars:
        return html.section("Training", *damaged or [html.note(f"No TensorBoard logs in {log_dir}.")])
    parts = []
    curves = plot_curves(scalars, out_dir / "curves.png")
    if curves is not None:
        parts.append(html.figure(curves.name, "loss and devel metric per epoch"))
    test = sorted((tag.removeprefix("test/"), points[-1][1]) for tag, points in scalars.items()
                  if tag.startswith("test/"))
    test = [(f"{name} (%)", 100 * value) if in_percent(name, categorical) else (name, value) for name, value in test]
    if test:
        parts.append(html.table(["test metric (chunks, end of training)", "value"], test))
    return html.section("Training", *damaged, html.row(*parts))


def _unusable(problem: DsplError) -> str:
    """The page's note for a file the report found but cannot use (the problem names the file): the section shows
    what else it has instead of the whole report failing."""
    return html.note(f"Not shown: {problem}")


def _found_json(path: Path, what: str) -> Any:
    """The content of a JSON file the report found; a DsplError names a file that is not a regular file (unopened)
    or not readable JSON."""
    try:
        return parse_json(regular_file(path, what).read_bytes(), str(path))
    except OSError as exc:
        raise DsplError(f"{path}: not readable ({exc.strerror})") from None


def _figures(metrics: Any, keys: tuple[str, ...], path: Path) -> dict[str, float]:
    """The numbers ``keys`` of a metrics file's content; a DsplError names the file and what it lacks."""
    if not isinstance(metrics, dict):
        raise DsplError(f"{path}: expected a JSON object of metrics, found {type(metrics).__name__}")
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DsplError(f"{path}: '{key}' is {json.dumps(value)}, expected a finite number")
    return {key: float(metrics[key]) for key in keys}


def _confusion(metrics: Any, predictor: Predictor, title: str, path: Path) -> str:
    """The confusion matrix of a devel-test metrics file with each class's recall; a DsplError names a file whose
    matrix is not one of counts over the model's classes."""
    figures = _figures(metrics, ("uar", "accuracy", "f1_macro"), path)
    classes = predictor.classes.num_classes
    expected = f"expected a {classes}x{classes} matrix of counts (a row and a column per class of the model)"
    try:
        matrix = np.asarray(metrics.get("cm"), dtype=float)
    except (TypeError, ValueError):  # text, or rows of different lengths
        raise DsplError(f"{path}: 'cm' is not a matrix of numbers, {expected}") from None
    if matrix.shape != (classes, classes):
        found = "x".join(map(str, matrix.shape)) + " matrix" if matrix.ndim == 2 else f"{matrix.ndim}-d array"
        raise DsplError(f"{path}: 'cm' is a {found}, {expected}")
    if not (np.isfinite(matrix).all() and (matrix >= 0).all() and (matrix == np.round(matrix)).all()):
        raise DsplError(f"{path}: 'cm' holds NaN, negative or fractional values, {expected}")
    recall = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    rows = [[label, *map(int, row), float(100 * r)] for label, row, r in zip(predictor.classes.labels, matrix, recall)]
    summary = (f"UAR {figures['uar']:.2f} %, accuracy {figures['accuracy']:.2f} %, "
               f"macro F1 {figures['f1_macro']:.2f} %")
    return html.table(["true \\ predicted", *predictor.classes.labels, "recall %"], rows, f"{title}: {summary}")


def _chunk_rows(predictions: Path, predictor: Predictor) -> list[tuple[str, str, str, float, list[float]]]:
    """(file, label, prediction, score of its label (regression: |error|), every class's score) of every chunk in
    devel-test's predictions file; a DsplError names the file and its first unusable line."""
    labels = predictor.classes.labels
    scores = [f"prob_{label}" for label in labels] if predictor.categorical else [f"value_{labels[0]}"]
    chunks = []
    try:
        with regular_file(predictions, "predictions file").open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("filename", "label", "prediction", *scores) if c not in (reader.fieldnames or [])]
            if missing:
                raise DsplError(f"{predictions}: no column {', '.join(missing)}")
            for row in reader:
                label = row["label"]
                if predictor.categorical and label not in labels:
                    raise DsplError(f"{predictions}: line {reader.line_num}: label '{label}' is not one of the "
                                    f"model's classes ({', '.join(labels)})")
                try:
                    values = [float(row[column]) for column in scores]
                except (TypeError, ValueError) as exc:  # a short line's missing fields are None
                    raise DsplError(f"{predictions}: line {reader.line_num}: not a number ({exc})") from None
                if not all(map(math.isfinite, values)):
                    raise DsplError(f"{predictions}: line {reader.line_num}: a score is not a finite number")
                score = values[labels.index(label)] if predictor.categorical else abs(values[0] - float(label))
                chunks.append((row["filename"], label, row["prediction"], score, values))
    except (OSError, ValueError, csv.Error) as exc:  # not text (UnicodeDecodeError), or not CSV
        raise DsplError(f"{predictions}: not a predictions file of devel-test ({exc})") from None
    return chunks


def _least_confident(predictions: Path, predictor: Predictor) -> str:
    """The files whose true class got the lowest mean chunk score (regression: the largest mean error)."""
    per_file: dict[str, list[float]] = defaultdict(list)
    truth, decided, class_scores = {}, defaultdict(list), defaultdict(list)
    for name, label, prediction, score, values in _chunk_rows(predictions, predictor):
        truth[name] = label
        decided[name].append(prediction)
        per_file[name].append(score)
        class_scores[name].append(values)
    if predictor.categorical:
        worst = sorted(per_file, key=lambda n: np.mean(per_file[n]))[:LEAST_CONFIDENT]
        rows = [[n, truth[n], float(np.mean(per_file[n])),
                 majority_vote(decided[n], np.mean(class_scores[n], axis=0), predictor.classes.labels)]
                for n in worst]
        return html.table(["file", "label", "mean score of its label", "file decision (majority vote)"], rows,
                          "least confident files")
    worst = sorted(per_file, key=lambda n: -np.mean(per_file[n]))[:LEAST_CONFIDENT]
    return html.table(["file", "target", "mean |error|"], [[n, truth[n], float(np.mean(per_file[n]))] for n in worst],
                      "largest errors")


def _evaluation(predictor: Predictor, model_file: Path) -> str:
    parts, problems = [], []
    for partition in ("devel", "test"):
        folder = model_file.parent / "evaluation" / partition
        tables = []
        for level, title in (("chunks", "chunks"), ("grouped", "files, majority vote")):
            metrics_file = folder / f"{partition}.{level}.metrics.json"
            if not metrics_file.exists():
                continue
            caption = f"{partition} ({title})"
            try:
                metrics = _found_json(metrics_file, "metrics file")
                tables.append(_confusion(metrics, predictor, caption, metrics_file) if predictor.categorical else
                              html.table(["metric", "value"],
                                         _figures(metrics, ("mae", "rmse", "ccc"), metrics_file).items(), caption))
            except DsplError as exc:
                problems.append(_unusable(exc))
        predictions = folder / f"{partition}.chunks.predictions.csv"
        if predictions.exists():
            try:
                tables.append(_least_confident(predictions, predictor))
            except DsplError as exc:
                problems.append(_unusable(exc))
        if tables:
            parts.append(html.row(*tables))
    parts.extend(problems)
    if not parts:
        parts.append(html.note("No evaluation files: run `dspl devel-test -md MODEL -d DATA -l LABELS`."))
    return html.section("Evaluation (devel-test)", *parts)


def _exports(model_file: Path) -> str:
    """Every export under the model's directory: its .tflite files (regular files only) with size, latency and
    what the export verified; an unreadable export report or a model that cannot be timed is noted instead."""
    exports, problems = {}, []
    for report_file in sorted(model_file.parent.rglob(REPORT_FILE)):
        try:
            exports[report_file] = ExportReport.read(regular_file(report_file, "export report"))
        except DsplError as exc:
            problems.append(_unusable(exc))
    models = {report_file: sorted(path for path in report_file.parent.glob("*.tflite") if path.is_file())
              for report_file in exports}
    latencies = _latencies([path for paths in models.values() for path in paths], model_file.parent, problems)
    parts = []
    for report_file, report in exports.items():
        rows = [[path.name, path.stat().st_size / 1e3, latencies[path]["median_ms"] if path in latencies else None,
                 *report.summary_of(path)] for path in models[report_file]]
        parts.append(html.table(["file", "size (kB)", "latency median (ms)", "verified against", "top-1 agreement",
                                 "max |Δ score|"], rows, f"{report_file.parent} (verified on {report.inputs})"))
    parts.extend(problems)
    if latencies:
        parts.append(html.note(_timed_how(next(iter(latencies.values())))))
    if not parts:
        parts.append(html.note("No export_report.json under the model's directory: run `dspl export -s MODEL -o DIR` "
                               "with DIR inside the model's directory."))
    return html.section("Exports", *parts)


def _latencies(models: list[Path], root: Path, problems: list[str]) -> dict[Path, dict[str, Any]]:
    """The latency of each model LiteRT can load, timed interleaved (`measure_latencies`); a damaged one is left
    out and noted in ``problems``, so that it costs the others' figures nothing."""
    named = {}
    for path in models:
        try:
            make_interpreter(path, threads=1)
        except DsplError as exc:
            problems.append(_unusable(exc))
        else:
            named[str(path.relative_to(root))] = path
    try:
        return {named[name]: latency for name, latency in measure_latencies(named, runs=20).items()} if named else {}
    except DsplError as exc:  # a model that loads but cannot be run
        problems.append(_unusable(exc))
        return {}


def _timed_how(latency: dict[str, Any]) -> str:
    """How the page's latencies were timed: on this machine, on how many threads, and whether it was busy."""
    busy = latency["others_busy_cpus"]
    load = ("" if busy is None or busy < BUSY_WARNING_CPUS else
            f"; other processes kept {busy:.1f} CPU(s) busy meanwhile, so the figures are higher than on an idle "
            "machine")
    return (f"Latency: TFLite interpreter on this machine, {latency['threads']} thread(s), median of "
            f"{latency['runs']} invokes after {latency['warmup']} warm-up invokes, interleaved across the files{load}.")


def _search(model_file: Path, out_dir: Path) -> str | None:
    """The search this model came from (`dspl search` left a marker beside it): the Pareto plot with this model
    ringed and the front's figures; None for a model that no search made."""
    marker = model_file.parent / MARKER_FILE
    if not marker.exists():
        return None
    try:
        trial = _found_json(marker, "search marker")
        if not (isinstance(trial, dict) and type(trial.get("trial")) is int and isinstance(trial.get("summary"), str)):
            raise DsplError(f'{marker}: expected {{"trial": <number>, "summary": "<folder>"}}, found '
                            f"{json.dumps(trial)[:80]}")
        info, rows = read_summary(model_file.parent / trial["summary"])
    except DsplError as exc:
        return html.section("Search", _unusable(exc))
    budget = info.budget
    image = plot_pareto(plot_points(rows, info), out_dir / "pareto.png", metric_label(info.metric),
                        budget.max_latency_ms, budget.max_size_kb, highlight=trial["trial"])
    shown = [row for row in rows if row.pareto or row.number == trial["trial"]]
    table = html.table(["trial", metric_label(info.metric), "latency (ms)", "size (kB)",
                        "feasible (within budget, faithful)", "Pareto front", *info.searched],
                       [[row.number, shown_metric(info.metric, row.metric), row.latency_ms, row.size_kb, row.feasible,
                         row.pareto, *(row.params[k] for k in info.searched)] for row in shown],
                       "this model and the Pareto front")
    what = html.note(f"Trial {trial['trial']} of study '{info.study}' ({info.storage}): {len(rows)} trials started "
                     f"of {info.trials}, budget {budget.describe()} ({info.quantize} end-to-end models, latency "
                     "measured on the machine that ran the trial).")
    return html.section("Search", what, html.row(html.figure(image.name, "devel metric against latency of every "
                                                             "finished trial"), table))


def _example_files(predictor: Predictor, partitions: dict[str, list] | None, data_dir: Path | None,
                   count: int) -> list[tuple[Path, str]]:
    """(path, label or '') of a few files to explain: one per class from test (else devel, else train)."""
    if data_dir is None:
        return []
    if partitions is None:
        return [(path, "") for path in find_audio_files(data_dir)[:count]]
    entries = partitions["test"] or partitions["devel"] or partitions["train"]
    chosen: dict[str, Any] = {}
    for entry in entries:
        chosen.setdefault(entry.label if predictor.categorical else str(len(chosen)), entry)
    return [(data_dir / e.path, e.label) for e in list(chosen.values())[:count]]


def _example_method(predictor: Predictor, waveforms: list[torch.Tensor]) -> str:
    """The sharpest method whose estimated cost for these examples (a forward pass of the method's batch, timed
    warm, times the passes it needs) fits EXAMPLE_BUDGET_SECONDS, else the cheapest; a model without gradients is
    explained by occlusion."""
    if not predictor.loaded.gradients:
        return EXAMPLE_METHODS[0]
    with torch.no_grad():
        plot = predictor.features(waveforms[0][None].to(predictor.device))
    height, width = plot.shape[-2:]
    for method in EXAMPLE_METHODS:
        passes, batch = forward_cost(method, height, width)
        estimate = _forward_seconds(predictor.model, plot.expand(batch, -1, -1, -1)) * passes * len(waveforms)
        if estimate <= EXAMPLE_BUDGET_SECONDS:
            return method
        logger.info("report: %s of %d examples would take about %.0f s; trying a cheaper method", method,
                    len(waveforms), estimate)
    return EXAMPLE_METHODS[-1]


def _forward_seconds(model: torch.nn.Module, plots: torch.Tensor) -> float:
    """Seconds of one forward pass of ``plots`` after an untimed one (the first pays for allocations and kernel
    choices that the passes of an explanation do not)."""
    with torch.no_grad():
        model(plots)
        start = time.perf_counter()
        model(plots)
        return time.perf_counter() - start


def _examples(predictor: Predictor, files: list[tuple[Path, str]], out_dir: Path) -> str:
    if not files:
        return html.section("Examples", html.note("Pass -d DATA (and -l LABELS) for example explanations."))
    chunk = predictor.spec.chunk_samples
    waveforms = [load_audio(path, predictor.spec.sample_rate) for path, _ in files]
    firsts = [waveform[:chunk] if chunk else waveform for waveform in waveforms]  # one chunk per file: quick
    method = _example_method(predictor, firsts)
    figures = []
    with progress_bar() as progress:
        for number, ((path, label), first) in enumerate(progress.track(list(zip(files, firsts)),
                                                                        description=f"report: {method} maps")):
            explained = explain_waveform(predictor, first, method, source=str(path))
            panels = [Panel(c.pixels, c.attribution, c.axes, c.title(predictor.categorical)) for c in explained]
            image = write_summary(panels, f"{path.name}" + (f" (label {label})" if label else ""),
                                  out_dir / f"example_{number}.png", dpi=90)
            figures.append(html.figure(image.name, f"{path.name}: {method} map of its first chunk"))
    how = html.note(f"Grey: the plot the model saw (low frequencies at the bottom). Colour: {DESCRIPTIONS[method]}; "
                    "brighter means more evidence.")
    return html.section("Examples with explanations", how, html.row(*figures))


def write_report(model_path: str | Path, data_dir: str | Path | None = None, label_file: str | Path | None = None,
                 given: GivenConfigs = NO_CONFIGS, examples: int = 3) -> Path:
    """Write `<model dir>/report/index.html` (and its PNGs) for a model file; returns the page's path.

    data_dir and label_file add the data counts; data_dir adds ``examples`` explained example files.
    ``given``: the configs given with -hc/-cc (a DeepSpectrumLite Keras model needs them; a given hp config's label
    parser reads the labels).
    """
    model_file = Path(model_path)
    predictor = Predictor(load_model_file(model_file, given))
    out_dir = prepare_output_dir(model_file.parent / REPORT_DIR, "report folder")
    for stale in out_dir.glob("*.png"):
        stale.unlink()
    data = Path(data_dir) if data_dir is not None else None
    try:
        partitions = _partitions(predictor, Path(label_file) if label_file is not None else None, given)
    except DsplError as exc:  # e.g. a label parser the report may not run: a page without counts, not a failure
        logger.warning("report: no data counts: %s", exc)
        partitions = None
    sections = [
        _configuration(predictor),
        _data(predictor, partitions),
        _training(model_file, out_dir, predictor.categorical),
        _evaluation(predictor, model_file),
        _exports(model_file),
        *filter(None, [_search(model_file, out_dir)]),
        _examples(predictor, _example_files(predictor, partitions, data, examples), out_dir),
    ]
    name = f"{model_file.parent.parent.name}/{model_file.parent.name}"
    page = out_dir / PAGE
    write_text_atomically(page, html.page(f"dspl model report: {name}", _header(predictor, model_file), sections))
    logger.info("report: %s", page)
    return page
