"""Activation functions by their Keras names (as DeepSpectrumLite's configs spell them) plus ARelu (fixed and
learnable).

Definitions follow tf.keras 2.x, the Keras DeepSpectrumLite was written for: ``hard_sigmoid`` is
``clip(0.2·x + 0.5, 0, 1)``, ``leaky_relu`` uses ``tf.nn.leaky_relu``'s slope 0.2, ``gelu`` is exact
(erf), ``swish``/``silu`` is ``x·sigmoid(x)``. Every module here exports to ONNX (opset 17).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from dspl.errors import DsplError

ARELU_ALPHA = 0.9  # DeepSpectrumLite's fixed ARelu constants (the paper's initial values of α and β)
ARELU_BETA = 2.0


class ARelu(nn.Module):
    """Attention-based Rectified Linear Unit (Chen et al., 2020, arXiv:2006.13858).

    ``ARelu(x) = (1 + σ(β))·relu(x) − clamp(α, 0.01, 0.99)·relu(−x)``. DeepSpectrumLite's ``arelu`` is this
    function with the fixed constants α = 0.9 and β = 2.0 (nothing trained), which is what ``arelu`` builds.
    ``learnable=True`` is the paper's variant (``arelu_learnable``): α and β are two learnable scalars per
    layer, starting at the same values. Either way α and β are in the state dict under the same names, so a
    model file written when ``arelu`` learned them loads and computes with the values it learned.
    """

    def __init__(self, alpha: float = ARELU_ALPHA, beta: float = ARELU_BETA, learnable: bool = False) -> None:
        super().__init__()
        self.learnable = learnable
        for name, value in (("alpha", alpha), ("beta", beta)):
            tensor = torch.tensor(value)
            if learnable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Amplify positive inputs by 1 + σ(β) and scale negative ones by the clamped α."""
        alpha = torch.clamp(self.alpha, 0.01, 0.99)
        gain = 1.0 + torch.sigmoid(self.beta)
        return F.relu(x) * gain - F.relu(-x) * alpha

    def extra_repr(self) -> str:
        return "learnable" if self.learnable else "fixed"


class _Elementwise(nn.Module):
    """Wraps a stateless tensor function as a module (so it shows in the model and exports)."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.name = name
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the wrapped function."""
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hard_sigmoid": lambda: _Elementwise("hard_sigmoid", _hard_sigmoid),
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "hard_swish": nn.Hardswish,
    "hard_silu": nn.Hardswish,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "exponential": lambda: _Elementwise("exponential", torch.exp),
    "mish": nn.Mish,
    "softmax": lambda: nn.Softmax(dim=-1),
    "log_softmax": lambda: nn.LogSoftmax(dim=-1),
    "arelu": ARelu,
    "arelu_learnable": lambda: ARelu(learnable=True),
}

ACTIVATIONS: tuple[str, ...] = tuple(sorted(_FACTORIES))


def create_activation(name: str, key: str = "activation") -> nn.Module:
    """Build the activation module a config names; ``key`` names the config key in error messages."""
    factory = _FACTORIES.get(str(name).strip().lower())
    if factory is None:
        raise DsplError(f"{key}: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return factory()


def output_activation_name(prediction_type: str, output_activation: str | None = None) -> str:
    """The output activation: ``output_activation`` if set, else softmax (categorical) or linear (regression)."""
    if output_activation:
        return str(output_activation).strip().lower()
    return "softmax" if prediction_type == "categorical" else "linear"
