"""The test report `train` prints at the end of each configuration: a confusion matrix and classification report
(categorical), or the regression metrics."""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table
from sklearn.metrics import classification_report, confusion_matrix

from dspl.config import ClassConfig


def print_test_report(console: Console, scores: torch.Tensor, targets: torch.Tensor, classes: ClassConfig,
                      categorical: bool, metrics: dict[str, float]) -> None:
    """Print the confusion matrix and classification report (categorical) or the error metrics (regression)."""
    console.rule("test partition (chunks)")
    if not categorical:
        table = Table("metric", "value")
        for name, value in metrics.items():
            table.add_row(name.removeprefix("test/"), f"{float(value):.4f}")
        console.print(table)
        return
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
