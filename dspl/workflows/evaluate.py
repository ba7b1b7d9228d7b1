"""`devel-test`: evaluate a model on the devel and test partitions; chunk- and file-level predictions and metrics."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from rich.console import Console
from rich.text import Text

from dspl.config import ClassConfig, GivenConfigs
from dspl.data.parsers import LabelEntry, check_files_exist, encode_targets, parse_label_file
from dspl.errors import DsplError
from dspl.files import prepare_output_dir, save_figure, write_text_atomically
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models.metrics import concordance_correlation
from dspl.models.predictor import Predictor
from dspl.workflows.console import make_console
from dspl.workflows.predict import chunk_rows, score_columns, write_csv
from dspl.workflows.progress import progress_bar

logger = logging.getLogger(__name__)


def classification_metrics(targets: list[int], predictions: list[int], classes: ClassConfig) -> dict[str, Any]:
    """Confusion matrix and UAR (percent, as DeepSpectrumLite reported it), accuracy and macro F1."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

    labels = list(range(classes.num_classes))
    return {
        "cm": confusion_matrix(targets, predictions, labels=labels).tolist(),
        "uar": 100.0 * recall_score(targets, predictions, labels=labels, average="macro", zero_division=0),
        "accuracy": 100.0 * accuracy_score(targets, predictions),
        "f1_macro": 100.0 * f1_score(targets, predictions, labels=labels, average="macro", zero_division=0),
        "labels": list(classes.labels),
        "count": len(targets),
    }


def regression_metrics(targets: list[float], predictions: list[float]) -> dict[str, Any]:
    """MAE, RMSE and Lin's concordance correlation coefficient (the same CCC that `train` logs)."""
    y, p = np.asarray(targets, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    ccc = concordance_correlation(p, y) if len(y) > 1 else float("nan")
    return {"mae": float(np.mean(np.abs(p - y))), "rmse": float(np.sqrt(np.mean((p - y) ** 2))),
            "ccc": ccc, "count": len(y)}


def majority_vote(chunk_decisions: Sequence[str], mean_scores: Sequence[float], labels: Sequence[str]) -> str:
    """The most frequent chunk decision of a file; ties go to the tied class with the highest mean score
    (``mean_scores`` in the order of ``labels``)."""
    votes = Counter(chunk_decisions)
    best = max(votes.values())
    tied = [label for label, n in votes.items() if n == best]
    return max(tied, key=lambda label: mean_scores[labels.index(label)])


def plot_confusion_matrix(cm: list[list[int]], classes: ClassConfig, title: str, path: Path) -> None:
    """Save a confusion matrix as a PNG with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(1.2 * len(cm) + 2.5, 1.2 * len(cm) + 2))
    ConfusionMatrixDisplay(np.asarray(cm), display_labels=list(classes.names)).plot(ax=ax, colorbar=False,
                                                                                     cmap="Blues")
    ax.set_title(title)
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=120)
    finally:
        plt.close(fig)


def _evaluate_partition(predictor: Predictor, name: str, entries: list[LabelEntry], data_dir: Path,
                        label_file: Path, out_dir: Path, console: Console) -> dict[str, dict[str, Any]]:
    classes, categorical = predictor.classes, predictor.categorical
    targets = encode_targets(entries, classes, categorical, label_file)
    chunk_lines, grouped_lines = [], []
    chunk_true, chunk_pred, file_true, file_pred = [], [], [], []
    with progress_bar() as progress:
        task = progress.add_task(f"evaluate {name}", total=len(entries))
        predictions = predictor.predict_files(data_dir / e.path for e in entries)
        for entry, target, prediction in zip(entries, targets, predictions):
            rows = chunk_rows(prediction, str(entry.path))
            chunk_lines.extend(row + [entry.label] for row in rows)
            if categorical:
                vote = majority_vote(prediction.chunk_decisions, prediction.scores, classes.labels)
                chunk_true += [target] * len(rows)
                chunk_pred += [classes.labels.index(d) for d in prediction.chunk_decisions]
                file_true.append(target)
                file_pred.append(classes.labels.index(vote))
                grouped_lines.append([str(entry.path), vote, entry.label])
            else:
                chunk_true += [target] * len(rows)
                chunk_pred += list(prediction.chunk_decisions)
                file_true.append(target)
                file_pred.append(float(prediction.decision))
                grouped_lines.append([str(entry.path), f"{prediction.decision:.6f}", entry.label])
            progress.advance(task)
    columns = score_columns(predictor)
    write_csv(out_dir / f"{name}.chunks.predictions.csv", ["filename", "time", *columns, "prediction", "label"],
              chunk_lines)
    write_csv(out_dir / f"{name}.grouped.predictions.csv", ["filename", "prediction", "label"], grouped_lines)
    results = {}
    for level, y, p in (("chunks", chunk_true, chunk_pred), ("grouped", file_true, file_pred)):
        metrics = classification_metrics(y, p, classes) if categorical else regression_metrics(y, p)
        write_text_atomically(out_dir / f"{name}.{level}.metrics.json", json.dumps(metrics, indent=2))
        results[level] = metrics
    if categorical:
        from sklearn.metrics import classification_report

        plot_confusion_matrix(results["chunks"]["cm"], classes, f"{name} (chunks)",
                              out_dir / f"{name}.chunks.confusion_matrix.png")
        plot_confusion_matrix(results["grouped"]["cm"], classes, f"{name} (files, majority vote)",
                              out_dir / f"{name}.grouped.confusion_matrix.png")
        console.print(Text(name, style="bold"), f": chunk UAR {results['chunks']['uar']:.2f} %, "
                      f"file UAR {results['grouped']['uar']:.2f} %", sep="")
        console.print(classification_report(chunk_true, chunk_pred, labels=list(range(classes.num_classes)),
                                            target_names=list(classes.names), zero_division=0))
    else:
        m = results["chunks"]
        console.print(Text(name, style="bold"), f": MAE {m['mae']:.4f}, RMSE {m['rmse']:.4f}, CCC {m['ccc']:.4f}",
                      sep="")
    return results


def devel_test(model_path: str | Path, data_dir: str | Path, label_file: str | Path,
               given: GivenConfigs = NO_CONFIGS, batch_size: int = 64,
               console: Console | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Evaluate the model on the devel and test partitions of the label file (``given``: the configs given with
    -hc/-cc; the given hp config's label parser reads the labels, else the built-in one).

    Writes `<model dir>/evaluation/<p>/<p>.{chunks,grouped}.{metrics.json,predictions.csv}` for p in devel,
    test, plus confusion-matrix PNGs, and prints a classification report. Returns the metrics by partition.
    """
    console = console or make_console()
    model_path, data_dir, label_file = Path(model_path), Path(data_dir), Path(label_file)
    loaded = load_model_file(model_path, given)
    predictor = Predictor(loaded, batch_size=batch_size)
    _, devel, test = parse_label_file(label_file, given.label_parser(loaded.config))
    if not devel and not test:
        raise DsplError(f"{label_file}: no devel or test entries to evaluate")
    check_files_exist(devel + test, data_dir, label_file)
    results = {}
    for name, entries in (("devel", devel), ("test", test)):
        if not entries:
            logger.warning("%s: no %s entries: skipped", label_file, name)
            continue
        out_dir = prepare_output_dir(model_path.parent / "evaluation" / name, "evaluation folder")
        results[name] = _evaluate_partition(predictor, name, entries, data_dir, label_file, out_dir, console)
    console.print(f"evaluation: {model_path.parent / 'evaluation'}")
    return results
