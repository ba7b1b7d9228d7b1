"""Losses by Keras names: per-sample values against tf.keras.losses on random data."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch

from dspl.errors import DsplError
from dspl.models.losses import LOSSES, create_loss

CATEGORICAL = ["categorical_crossentropy", "kl_divergence", "categorical_hinge", "cosine_similarity",
               "mse", "mae"]
REGRESSION = ["mae", "mean_absolute_error", "mse", "mean_squared_error", "huber", "log_cosh", "mape", "msle",
              "poisson"]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return importlib.import_module("tensorflow").keras


def _keras_name(name: str) -> str:
    return {"mae": "mean_absolute_error", "mse": "mean_squared_error", "mape": "mean_absolute_percentage_error",
            "msle": "mean_squared_logarithmic_error"}.get(name, name)


@pytest.mark.parametrize("name", CATEGORICAL)
def test_categorical_losses_match_keras(keras, name):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 4, generator=gen) * 2
    soft = torch.softmax(torch.randn(6, 4, generator=gen), -1)
    loss = create_loss(name, "categorical")
    ours = loss(logits, soft, reduction="none")
    expected = keras.losses.get(_keras_name(name))(soft.numpy(), torch.softmax(logits, -1).numpy())
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses_match_keras(keras, name):
    gen = torch.Generator().manual_seed(2)
    logits = torch.rand(8, 1, generator=gen) * 3
    target = torch.rand(8, generator=gen) * 3
    ours = create_loss(name, "regression")(logits, target, reduction="none")
    expected = keras.losses.get(_keras_name(name))(target.view(8, 1).numpy(), logits.numpy())
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["binary_crossentropy", "hinge", "squared_hinge"])
def test_sigmoid_output_losses_match_keras(keras, name):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, generator=gen) * 2
    target = (torch.rand(5, 3, generator=gen) > 0.5).float()
    ours = create_loss(name, "categorical", output_activation="sigmoid")(logits, target, reduction="none")
    expected = keras.losses.get(name)(target.numpy(), torch.sigmoid(logits).numpy())
    np.testing.assert_allclose(ours.numpy(), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_crossentropy_is_stable_for_extreme_logits():
    loss = create_loss("categorical_crossentropy", "categorical")
    logits = torch.tensor([[1000.0, -1000.0]])
    assert torch.allclose(loss(logits, torch.tensor([[0.0, 1.0]])), torch.tensor(2000.0))


def test_class_indices_and_reductions():
    loss = create_loss("sparse_categorical_crossentropy", "categorical")
    logits = torch.randn(4, 3)
    per_sample = loss(logits, torch.tensor([0, 2, 1, 0]), reduction="none")
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2, 1, 0]), reduction="none")
    assert torch.allclose(per_sample, expected, atol=1e-6)
    assert torch.allclose(loss(logits, torch.tensor([0, 2, 1, 0])), expected.mean(), atol=1e-6)
    assert torch.allclose(loss(logits, torch.tensor([0, 2, 1, 0]), reduction="sum"), expected.sum(), atol=1e-5)


def test_gradients_flow_through_logits():
    logits = torch.randn(3, 1, requires_grad=True)
    create_loss("huber", "regression")(logits, torch.zeros(3)).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_unknown_loss_lists_names():
    with pytest.raises(DsplError, match=r"loss: unknown loss 'focal'.*categorical_crossentropy.*mae"):
        create_loss("focal", "categorical")
    assert "huber" in LOSSES and "log_cosh" in LOSSES
