"""Freeze the backbone and unfreeze its last share of layers, with BatchNorm statistics frozen alike.

A *layer* is a module that owns parameters directly (``named_parameters(recurse=False)`` is not
empty: a convolution, a linear layer, a BatchNorm's affine pair, a ViT's position embedding),
counted in registration order (``named_modules``), which for timm/torchvision models runs from the
input to the output. A BatchNorm layer whose parameters are frozen runs in eval mode — it neither
updates nor uses batch statistics — even while the model trains, as a frozen Keras BatchNormalization
does; call :func:`set_frozen_batchnorm_eval` after ``.train()`` (``SpectrumClassifier.train`` does).
"""

from __future__ import annotations

import math

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from dspl.errors import DsplError


def backbone_layers(backbone: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's layers (modules owning parameters directly), input to output."""
    return [(name, m) for name, m in backbone.named_modules()
            if next(m.parameters(recurse=False), None) is not None]


def set_frozen_batchnorm_eval(module: nn.Module) -> None:
    """Put BatchNorm layers with frozen parameters in eval mode (and the trainable ones back in the module's mode)."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            params = list(m.parameters(recurse=False))
            frozen = bool(params) and not any(p.requires_grad for p in params)
            m.train(False if frozen else module.training)


def freeze_backbone(model: nn.Module) -> None:
    """Freeze every backbone parameter and BatchNorm statistic; the head stays trainable."""
    model.backbone.requires_grad_(False)
    set_frozen_batchnorm_eval(model.backbone)


def unfreeze_last(model: nn.Module, share: float) -> int:
    """Make the last ``share`` of backbone layers trainable (the rest frozen); returns how many.

    The count is ``ceil(share · layers)``, so any positive share unfreezes at least one layer;
    share 1 unfreezes the whole backbone, 0 none.
    """
    if not 0.0 <= share <= 1.0:
        raise DsplError(f"finetune_layer: {share!r} is outside [0, 1]; expected the share of backbone "
                        "layers to fine-tune")
    layers = backbone_layers(model.backbone)
    count = math.ceil(share * len(layers) - 1e-9)
    model.backbone.requires_grad_(False)
    for _, layer in layers[len(layers) - count:]:
        for p in layer.parameters(recurse=False):
            p.requires_grad_(True)
    set_frozen_batchnorm_eval(model.backbone)
    return count
