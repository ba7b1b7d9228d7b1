"""dspl.models.activations: every activation a config can name, against its formula written out in numpy, and
against tf.keras 2.x (the Keras DeepSpectrumLite ran) wherever tf.keras has a function of that name; each builds,
runs and exports to ONNX.

No activation is skipped silently: NO_TF_KERAS_TWIN lists exactly the names tf.keras 2.x does not know, and
a test asserts that tf.keras really refuses those and accepts all the others.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from dspl.models.activations import ACTIVATIONS, create_activation

_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x):
    return np.log1p(np.exp(x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _relu6(x):
    return np.minimum(np.maximum(x, 0.0), 6.0)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
ARELU_ALPHA, ARELU_BETA = 0.9, 2.0  # DeepSpectrumLite's fixed ARelu constants
# name -> the function in numpy (float64), as tf.keras 2.x defines it (arelu: Chen et al., 2020)
FORMULAS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": _relu6,
    "elu": lambda x: np.where(x > 0, x, np.exp(x) - 1.0),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1.0)),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0),
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "hard_swish": lambda x: x * _relu6(x + 3.0) / 6.0,
    "hard_silu": lambda x: x * _relu6(x + 3.0) / 6.0,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "exponential": np.exp,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "softmax": _softmax,
    "log_softmax": lambda x: np.log(_softmax(x)),
    "arelu": lambda x: (1.0 + _sigmoid(ARELU_BETA)) * np.maximum(x, 0.0) - ARELU_ALPHA * np.maximum(-x, 0.0),
    "arelu_learnable": lambda x: ((1.0 + _sigmoid(ARELU_BETA)) * np.maximum(x, 0.0)
                                  - ARELU_ALPHA * np.maximum(-x, 0.0)),
}
# tf.keras 2.x (tf_keras 2.19) has no activation of these names; they are checked against FORMULAS only
NO_TF_KERAS_TWIN = {"arelu", "arelu_learnable", "hard_silu", "hard_swish"}
# inputs: a dense grid over [-8, 8] including the kinks of relu6, hard_sigmoid and hard_swish exactly
X = np.concatenate([np.linspace(-8, 8, 161), [-3.0, -2.5, 0.0, 2.5, 3.0, 6.0, -1e-3]]).astype(np.float32).reshape(4, 42)


def _ours(name: str) -> np.ndarray:
    with torch.no_grad():
        return create_activation(name)(torch.from_numpy(X)).numpy()


def test_every_configurable_activation_has_a_formula_here():
    assert set(FORMULAS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_activation_equals_its_formula(name):
    if name not in ACTIVATIONS:
        pytest.fail(f"{name} has a formula here but dspl does not offer it")
    expected = FORMULAS[name](X.astype(np.float64))
    np.testing.assert_allclose(_ours(name), expected, rtol=2e-6, atol=2e-6, err_msg=name)


def test_formulas_tell_the_activations_apart():
    """The grid separates every pair of activations that differ (so a name mapped to the wrong one fails)."""
    values = {name: FORMULAS[name](X.astype(np.float64)) for name in FORMULAS}
    same = {frozenset({"swish", "silu"}), frozenset({"hard_swish", "hard_silu"}),
            frozenset({"arelu", "arelu_learnable"})}
    for a in values:
        for b in values:
            if a < b and frozenset({a, b}) not in same:
                assert np.abs(values[a] - values[b]).max() > 1e-2, (a, b)


def test_tf_keras_knows_exactly_the_names_outside_the_no_twin_list():
    tf_keras = importlib.import_module("tf_keras")
    known = set()
    for name in ACTIVATIONS:
        try:
            tf_keras.activations.get(name)
        except ValueError:
            continue
        known.add(name)
    assert set(ACTIVATIONS) - known == NO_TF_KERAS_TWIN


@pytest.mark.parametrize("name", sorted(set(FORMULAS) - NO_TF_KERAS_TWIN))
def test_activation_equals_tf_keras(name):
    tf = importlib.import_module("tensorflow")
    tf_keras = importlib.import_module("tf_keras")
    keras_fn = tf_keras.activations.get(name)
    np.testing.assert_allclose(_ours(name), np.asarray(keras_fn(tf.constant(X))), rtol=2e-6, atol=2e-6,
                               err_msg=name)


# --- building, DeepSpectrumLite's definitions, ONNX export ----------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds_and_runs(name):
    out = create_activation(name)(torch.linspace(-3, 3, 12).view(2, 6))
    assert out.shape == (2, 6) and torch.isfinite(out).all()


def test_keras_specific_activation_definitions():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])
    assert torch.allclose(create_activation("hard_sigmoid")(x), torch.clamp(0.2 * x + 0.5, 0, 1))
    assert torch.allclose(create_activation("leaky_relu")(x), torch.where(x > 0, x, 0.2 * x))
    assert torch.allclose(create_activation("softsign")(x), x / (1 + x.abs()))
    assert torch.allclose(create_activation("swish")(x), x * torch.sigmoid(x))


def test_arelu_is_deepspectrumlites_fixed_function():
    act = create_activation("arelu")
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    gain = 1 + torch.sigmoid(torch.tensor(2.0))
    expected = torch.where(x >= 0, gain * x, 0.9 * x)
    assert torch.allclose(act(x), expected)
    assert list(act.parameters()) == [] and sorted(act.state_dict()) == ["alpha", "beta"]


def test_arelu_learnable_formula():
    act = create_activation("arelu_learnable")
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0])
    gain = 1 + torch.sigmoid(torch.tensor(2.0))
    assert torch.allclose(act(x), torch.where(x >= 0, gain * x, 0.9 * x))
    with torch.no_grad():
        act.alpha.fill_(5.0)
    assert torch.allclose(act(torch.tensor([-1.0])), torch.tensor([-0.99]))
    assert len(list(act.parameters())) == 2


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_exports_to_onnx(tmp_path, name):
    ort = importlib.import_module("onnxruntime")
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), create_activation(name)).eval()
    x = torch.randn(3, 4)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(module, (x,), str(path), opset_version=17, dynamo=False, input_names=["x"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(out, module(x).detach().numpy(), rtol=1e-5, atol=1e-5)
