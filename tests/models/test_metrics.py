"""Metrics: categorical collection against scikit-learn, CCC against Lin's formula in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from dspl.models.metrics import ConcordanceCorrelation, create_metrics


def _ccc_numpy(x: np.ndarray, y: np.ndarray) -> float:
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_categorical_metrics_match_sklearn():
    gen = torch.Generator().manual_seed(0)
    metrics = create_metrics("categorical", 3, ["neg", "neu", "pos"], prefix="val_")
    scores, targets = torch.randn(40, 3, generator=gen), torch.randint(0, 3, (40,), generator=gen)
    for i in range(0, 40, 16):  # accumulates over batches
        metrics.update(torch.softmax(scores[i:i + 16], -1), targets[i:i + 16])
    result = {k: float(v) for k, v in metrics.compute().items()}
    pred, true = scores.argmax(-1).numpy(), targets.numpy()
    assert result["val_accuracy"] == pytest.approx(accuracy_score(true, pred), abs=1e-6)
    assert result["val_uar"] == pytest.approx(recall_score(true, pred, average="macro"), abs=1e-6)
    assert result["val_precision"] == pytest.approx(precision_score(true, pred, average="macro"), abs=1e-6)
    assert result["val_f1"] == pytest.approx(f1_score(true, pred, average="macro"), abs=1e-6)
    per_class = recall_score(true, pred, average=None)
    assert [result[f"val_recall_{c}"] for c in ("neg", "neu", "pos")] == pytest.approx(per_class, abs=1e-6)
    assert "val_precision_pos" in result


def test_ccc_matches_numpy_over_batches():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(100, generator=gen) * 2 + 1
    y = 0.6 * x + torch.randn(100, generator=gen) * 0.8 - 0.5
    metric = ConcordanceCorrelation()
    for i in range(0, 100, 32):
        metric.update(x[i:i + 32], y[i:i + 32])
    assert float(metric.compute()) == pytest.approx(_ccc_numpy(x.double().numpy(), y.double().numpy()), abs=1e-6)


def test_ccc_perfect_agreement_is_one():
    metric = ConcordanceCorrelation()
    metric.update(torch.arange(10.0), torch.arange(10.0))
    assert float(metric.compute()) == pytest.approx(1.0)


def test_regression_collection():
    gen = torch.Generator().manual_seed(2)
    preds, target = torch.randn(20, 1, generator=gen), torch.randn(20, generator=gen)
    metrics = create_metrics("regression", 1)
    metrics.update(preds, target)
    result = {k: float(v) for k, v in metrics.compute().items()}
    p, t = preds.view(-1).numpy(), target.numpy()
    assert result["mae"] == pytest.approx(np.abs(p - t).mean(), abs=1e-6)
    assert result["mse"] == pytest.approx(((p - t) ** 2).mean(), abs=1e-6)
    assert result["rmse"] == pytest.approx(np.sqrt(((p - t) ** 2).mean()), abs=1e-6)
    assert result["ccc"] == pytest.approx(_ccc_numpy(p.astype(np.float64), t.astype(np.float64)), abs=1e-6)
