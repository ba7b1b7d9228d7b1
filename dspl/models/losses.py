"""Losses by their Keras names, per sample, computed from the model's logits.

A loss takes the logits (``SpectrumClassifier.logits``, before the output activation) and applies the
output activation itself, so cross-entropies can use the log-domain form: categorical (and sparse
categorical) cross-entropy with a softmax output is ``−Σ y·log_softmax(logits)``, binary
cross-entropy with a sigmoid output is computed from logits. Every other combination evaluates the
Keras formula on the scores (clipping probabilities to [1e-7, 1 − 1e-7] as Keras does). Targets are
soft/one-hot [B, K] or class indices [B] (categorical) and [B] or [B, 1] values (regression).
Per-sample values are reduced over the last axis as Keras does; ``reduction='none'`` returns [B]
(SapAugment ranks samples by it), 'mean' (default) and 'sum' reduce over the batch.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dspl.errors import DsplError
from dspl.models.activations import create_activation, output_activation_name

EPS = 1e-7
Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _clip(p: torch.Tensor) -> torch.Tensor:
    return torch.clamp(p, EPS, 1.0 - EPS)


def _categorical_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = p / p.sum(-1, keepdim=True)
    return -(y * torch.log(_clip(p))).sum(-1)


def _binary_crossentropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = _clip(p)
    return -(y * torch.log(p) + (1.0 - y) * torch.log(1.0 - p)).mean(-1)


def _kl_divergence(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y = torch.clamp(y, EPS, 1.0)
    return (y * torch.log(y / torch.clamp(p, EPS, 1.0))).sum(-1)


def _huber(p: torch.Tensor, y: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    err = torch.abs(y - p)
    return torch.where(err <= delta, 0.5 * err**2, delta * err - 0.5 * delta**2).mean(-1)


def _log_cosh(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = p - y
    return (x + F.softplus(-2.0 * x) - math.log(2.0)).mean(-1)


def _mape(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 100.0 * (torch.abs(y - p) / torch.clamp(torch.abs(y), min=EPS)).mean(-1)


def _msle(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((torch.log1p(torch.clamp(p, min=EPS)) - torch.log1p(torch.clamp(y, min=EPS))) ** 2).mean(-1)


def _poisson(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (p - y * torch.log(p + EPS)).mean(-1)


def _cosine_similarity(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -(F.normalize(y, dim=-1, eps=1e-6) * F.normalize(p, dim=-1, eps=1e-6)).sum(-1)


def _signed(y: torch.Tensor) -> torch.Tensor:
    """Keras' hinge convention: 0/1 targets become −1/1."""
    return 2.0 * y - 1.0 if bool(((y == 0) | (y == 1)).all()) else y


def _hinge(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - _signed(y) * p).mean(-1)


def _squared_hinge(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (F.relu(1.0 - _signed(y) * p) ** 2).mean(-1)


def _categorical_hinge(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pos = (y * p).sum(-1)
    neg = ((1.0 - y) * p).amax(-1)
    return F.relu(neg - pos + 1.0)


_LOSSES: dict[str, Fn] = {
    "categorical_crossentropy": _categorical_crossentropy,
    "sparse_categorical_crossentropy": _categorical_crossentropy,
    "binary_crossentropy": _binary_crossentropy,
    "kl_divergence": _kl_divergence,
    "mean_absolute_error": lambda p, y: torch.abs(y - p).mean(-1),
    "mean_squared_error": lambda p, y: ((y - p) ** 2).mean(-1),
    "mean_absolute_percentage_error": _mape,
    "mean_squared_logarithmic_error": _msle,
    "huber": _huber,
    "log_cosh": _log_cosh,
    "poisson": _poisson,
    "cosine_similarity": _cosine_similarity,
    "hinge": _hinge,
    "squared_hinge": _squared_hinge,
    "categorical_hinge": _categorical_hinge,
}

_ALIASES: dict[str, str] = {
    "mae": "mean_absolute_error", "mse": "mean_squared_error", "mape": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence",
    "kullback_leibler_divergence": "kl_divergence", "huber_loss": "huber", "logcosh": "log_cosh",
}

LOSSES: tuple[str, ...] = tuple(sorted(set(_LOSSES) | set(_ALIASES)))
_CROSSENTROPY = ("categorical_crossentropy", "sparse_categorical_crossentropy")


class KerasLoss(nn.Module):
    """A Keras loss evaluated on logits through the model's output activation; see the module docstring."""

    def __init__(self, name: str, prediction_type: str, output_activation: str) -> None:
        super().__init__()
        self.name = name
        self.prediction_type = prediction_type
        self.output_activation = output_activation
        self.activation = create_activation(output_activation, "output_activation")
        self.fn = _LOSSES[name]

    def targets(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Targets in the logits' shape: class indices → one-hot, [B] regression values → [B, 1]."""
        if self.prediction_type == "categorical" and target.ndim == 1 and logits.ndim == 2:
            return F.one_hot(target.long(), logits.shape[-1]).to(logits.dtype)
        return target.to(logits.dtype).reshape(logits.shape)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Per-sample losses [B] reduced by ``reduction`` ('mean', 'sum' or 'none')."""
        y = self.targets(logits, target)
        if self.name in _CROSSENTROPY and self.output_activation == "softmax":
            per_sample = -(y * F.log_softmax(logits, dim=-1)).sum(-1)
        elif self.name == "binary_crossentropy" and self.output_activation == "sigmoid":
            per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(-1)
        else:
            per_sample = self.fn(self.activation(logits), y)
        if reduction == "none":
            return per_sample
        if reduction == "sum":
            return per_sample.sum()
        if reduction == "mean":
            return per_sample.mean()
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def create_loss(name: str, prediction_type: str = "categorical",
                output_activation: str | None = None) -> KerasLoss:
    """The loss a config's ``loss`` key names; ``output_activation`` defaults to softmax/linear by type."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _LOSSES:
        raise DsplError(f"loss: unknown loss {name!r}; expected one of {', '.join(LOSSES)}")
    return KerasLoss(key, prediction_type, output_activation_name(prediction_type, output_activation))
