"""Optimizers: Keras defaults, FTRL-Proximal against tf.keras.optimizers.Ftrl, unknown names."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch

from dspl.config.schema import OPTIMIZERS
from dspl.errors import DsplError
from dspl.models.optim import Ftrl, create_optimizer

A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 2.0]], np.float32)
B = np.array([1.0, -2.0, 0.5], np.float32)
W0 = np.array([0.3, -0.7, 0.1], np.float32)


def _torch_quadratic(opt_factory, steps: int = 60) -> np.ndarray:
    w = torch.tensor(W0, requires_grad=True)
    opt = opt_factory([w])
    a, b = torch.tensor(A), torch.tensor(B)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * w @ a @ w - b @ w).backward()
        opt.step()
    return w.detach().numpy()


def _keras_quadratic(opt, steps: int = 60) -> np.ndarray:
    import tensorflow as tf

    w = tf.Variable(W0)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.tensordot(w, tf.linalg.matvec(A, w), 1) - tf.tensordot(B, w, 1)
        opt.apply_gradients([(tape.gradient(loss, w), w)])
    return w.numpy()


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return importlib.import_module("tensorflow")


def test_ftrl_matches_keras_defaults(tf):
    ours = _torch_quadratic(lambda p: create_optimizer("ftrl", p, 0.1))
    keras = _keras_quadratic(tf.keras.optimizers.Ftrl(learning_rate=0.1))
    np.testing.assert_allclose(ours, keras, atol=1e-5)


def test_ftrl_with_regularisation_matches_keras(tf):
    kwargs = dict(learning_rate_power=-0.7, initial_accumulator_value=0.3, l1=0.05, l2=0.1, beta=0.2)
    ours = _torch_quadratic(lambda p: Ftrl(p, lr=0.2, l2_shrinkage=0.01, **kwargs))
    keras = _keras_quadratic(tf.keras.optimizers.Ftrl(
        learning_rate=0.2, l1_regularization_strength=kwargs["l1"], l2_regularization_strength=kwargs["l2"],
        learning_rate_power=kwargs["learning_rate_power"], beta=kwargs["beta"],
        initial_accumulator_value=kwargs["initial_accumulator_value"], l2_shrinkage_regularization_strength=0.01))
    np.testing.assert_allclose(ours, keras, atol=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizers_follow_deepspectrumlites_keras(tf, name):
    legacy = importlib.import_module("tf_keras").optimizers.legacy  # tf.keras 2.x, as DeepSpectrumLite ran
    keras_opt = {"adam": legacy.Adam, "adadelta": legacy.Adadelta, "sgd": legacy.SGD, "adagrad": legacy.Adagrad,
                 "ftrl": legacy.Ftrl, "nadam": legacy.Nadam, "rmsprop": legacy.RMSprop}[name](learning_rate=0.01)
    ours = _torch_quadratic(lambda p: create_optimizer(name, p, 0.01))
    np.testing.assert_allclose(ours, _keras_quadratic(keras_opt), atol=1e-5)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_configurable_optimizer_decreases_a_quadratic(name):
    start = 0.5 * W0 @ A @ W0 - B @ W0
    lr = 1.0 if name == "adadelta" else 0.05
    w = _torch_quadratic(lambda p: create_optimizer(name, p, lr), steps=100)
    assert 0.5 * w @ A @ w - B @ w < start


def test_unknown_optimizer():
    with pytest.raises(DsplError, match=r"optimizer: unknown optimizer 'adamw'.*ftrl"):
        create_optimizer("adamw", [torch.zeros(1, requires_grad=True)], 0.1)
