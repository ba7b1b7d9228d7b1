"""Evaluation metrics as torchmetrics collections (they accumulate per epoch and sync under DDP).

Categorical: ``accuracy``, ``uar`` (unweighted average recall = macro recall), ``precision`` and
``f1`` (macro), ``recall_<label>`` and ``precision_<label>`` per class; update with scores or logits
[B, K] and class indices [B] (for soft targets pass ``target.argmax(-1)``).
Regression: ``mae``, ``mse``, ``rmse`` and ``ccc``; update with values [B] (or [B, 1]) and targets [B].
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError
from torchmetrics.wrappers import ClasswiseWrapper


class ConcordanceCorrelation(Metric):
    """Lin's concordance correlation coefficient 2·cov(x, y) / (var x + var y + (x̄ − ȳ)²), population moments.

    torchmetrics' ``ConcordanceCorrCoef`` divides the variances by n − 1 but not the mean term, which
    is not Lin's (1989) definition; this one accumulates float64 sums and uses 1/n throughout.
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        for name in ("n", "sx", "sy", "sxx", "syy", "sxy"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Accumulate the sums of one batch."""
        x = preds.detach().reshape(-1).to(torch.float64)
        y = target.detach().reshape(-1).to(torch.float64)
        if x.shape != y.shape:
            raise ValueError(f"preds and target differ in size: {x.numel()} vs {y.numel()}")
        self.n += x.numel()
        self.sx += x.sum()
        self.sy += y.sum()
        self.sxx += (x * x).sum()
        self.syy += (y * y).sum()
        self.sxy += (x * y).sum()

    def compute(self) -> torch.Tensor:
        """The coefficient over everything accumulated (NaN for constant equal inputs)."""
        mx, my = self.sx / self.n, self.sy / self.n
        vx = self.sxx / self.n - mx * mx
        vy = self.syy / self.n - my * my
        cov = self.sxy / self.n - mx * my
        return (2.0 * cov / (vx + vy + (mx - my) ** 2)).to(torch.float32)


def concordance_correlation(preds: Sequence[float] | torch.Tensor, target: Sequence[float] | torch.Tensor) -> float:
    """Lin's CCC of two sequences, by the same ConcordanceCorrelation that training logs (one definition)."""
    metric = ConcordanceCorrelation()
    metric.update(torch.as_tensor(preds, dtype=torch.float64), torch.as_tensor(target, dtype=torch.float64))
    return float(metric.compute())


class _Flat(Metric):
    """Flattens [B, 1] predictions to [B] before a regression metric."""

    full_state_update = False

    def __init__(self, metric: Metric) -> None:
        super().__init__()
        self.metric = metric

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Update the wrapped metric with flattened predictions and targets."""
        self.metric.update(preds.reshape(-1), target.reshape(-1).to(preds.dtype))

    def compute(self) -> torch.Tensor:
        """The wrapped metric's value."""
        return self.metric.compute()

    def reset(self) -> None:
        """Reset the wrapped metric too."""
        self.metric.reset()
        super().reset()


def in_percent(name: str, categorical: bool) -> bool:
    """Whether a metric of these collections is a share (of chunks, or of a class's chunks), which people read in
    percent as DeepSpectrumLite printed them: every categorical one but the loss; no regression one."""
    return categorical and name != "loss"


def create_metrics(prediction_type: str, num_classes: int, labels: Sequence[str] | None = None,
                   prefix: str = "") -> MetricCollection:
    """The metric collection for a prediction type; ``labels`` name the per-class entries (default 0..K−1)."""
    if prediction_type == "regression":
        return MetricCollection({
            "mae": _Flat(MeanAbsoluteError()),
            "mse": _Flat(MeanSquaredError()),
            "rmse": _Flat(MeanSquaredError(squared=False)),
            "ccc": ConcordanceCorrelation(),
        }, prefix=prefix)
    names = [str(label) for label in labels] if labels is not None else [str(i) for i in range(num_classes)]
    return MetricCollection({
        "accuracy": MulticlassAccuracy(num_classes, average="micro"),
        "uar": MulticlassRecall(num_classes, average="macro"),
        "precision": MulticlassPrecision(num_classes, average="macro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "recall_per_class": ClasswiseWrapper(MulticlassRecall(num_classes, average=None), names, prefix="recall_"),
        "precision_per_class": ClasswiseWrapper(MulticlassPrecision(num_classes, average=None), names,
                                                prefix="precision_"),
    }, prefix=prefix, compute_groups=False)  # compute groups misfire with ClasswiseWrapper (spurious warnings)
