"""SpectrumClassifier: input normalisation → backbone → Dense → activation → Dropout → Dense → output
activation."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dspl.config import ModelSettings
from dspl.models.activations import create_activation, output_activation_name
from dspl.models.freezing import set_frozen_batchnorm_eval
from dspl.models.registry import Backbone, create_backbone


@dataclass(frozen=True)
class InputNormalisation:
    """How a classifier maps its 0..255 plots to the backbone's input, per channel: ``(x/255 − mean)/std``."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def scale(self) -> np.ndarray:
        """Per-channel factor of the map written as ``x·scale + shift`` on the 0..255 plot."""
        return 1.0 / (255.0 * np.asarray(self.std, np.float64))

    @property
    def shift(self) -> np.ndarray:
        """Per-channel offset of the map written as ``x·scale + shift``."""
        return -np.asarray(self.mean, np.float64) / np.asarray(self.std, np.float64)


class SpectrumClassifier(nn.Module):
    """Transfer-learning classifier/regressor on spectrogram plots (DeepSpectrumLite's TransferBaseModel).

    Input: plots [B, 3, H, W] on 0..255, normalised inside as ``(x/255 − mean)/std`` with the backbone's
    ImageNet statistics, so exported models take plots as they are; or, without plot images, raw
    features [B, 1, frames, features] that are passed to the backbone unchanged (no fixed statistics
    fit dB/MFCC values, and DeepSpectrumLite fed them as they are). ``forward`` returns scores after
    the output activation, ``logits`` the values before it.
    """

    def __init__(self, backbone: Backbone, num_outputs: int, num_units: int, activation: str,
                 dropout: float, output_activation: str, input_channels: int = 3) -> None:
        super().__init__()
        self.backbone = backbone.module
        self.input_channels = input_channels
        self.images = input_channels == 3
        mean = backbone.mean if self.images else (0.0,) * input_channels
        std = backbone.std if self.images else (1.0,) * input_channels
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.head = nn.Sequential(OrderedDict(
            dense=nn.Linear(backbone.num_features, num_units),
            activation=create_activation(activation, "activation"),
            dropout=nn.Dropout(dropout),
            output=nn.Linear(num_units, num_outputs),
        ))
        for layer in (self.head.dense, self.head.output):  # Keras Dense defaults: glorot_uniform, zeros
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.output_activation = create_activation(output_activation, "output_activation")

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map model input to what the backbone expects (identity for raw features)."""
        if not self.images:
            return x
        return (x / 255.0 - self.mean) / self.std

    @property
    def input_normalisation(self) -> InputNormalisation | None:
        """What ``normalize`` does to plots; None for raw features, which pass unchanged."""
        if not self.images:
            return None
        return InputNormalisation(tuple(self.mean.flatten().tolist()), tuple(self.std.flatten().tolist()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features [B, num_features]."""
        return self.backbone(self.normalize(x))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs before the output activation [B, num_outputs]."""
        return self.head(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores after the output activation [B, num_outputs]."""
        return self.output_activation(self.logits(x))

    def train(self, mode: bool = True) -> "SpectrumClassifier":
        """Switch mode, keeping BatchNorm layers of the frozen backbone part in eval mode."""
        super().train(mode)
        set_frozen_batchnorm_eval(self.backbone)
        return self


def create_model(settings: ModelSettings, num_outputs: int, *, in_chans: int = 3,
                 pretrained: bool = True) -> SpectrumClassifier:
    """The model a configuration's model part describes, for plots (``in_chans`` 3) or raw features (1).

    ``pretrained=False`` ignores ``weights`` (random init): for rebuilding a saved model before loading its state.
    """
    backbone = create_backbone(settings.basemodel_name, settings.weights if pretrained else "", in_chans=in_chans)
    return SpectrumClassifier(backbone, num_outputs, settings.num_units, settings.activation, settings.dropout,
                              output_activation_name(settings.prediction_type, settings.output_activation), in_chans)
