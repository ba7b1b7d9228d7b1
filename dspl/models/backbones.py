"""The backbones dspl builds itself: DeepSpectrumLite's `basemodel_name` values and any timm model name.

DeepSpectrumLite named Keras applications; each maps to the timm model with the same architecture
(torchvision's SqueezeNet where timm has none). Any other timm model name (``arch`` or ``arch.tag``)
is used as is. ``mobilenet`` (Keras MobileNet v1, width 1.0) maps to timm's ``mobilenetv1_100``, a
re-implementation of the same architecture; ``xception`` maps to ``legacy_xception`` (Chollet's
original network, weights ported from Keras) rather than timm's "aligned" ``xception41/65/71``.
``nasnet_mobile`` has no PyTorch port in timm or torchvision and fails with suggestions. These are the
registry's fallback: every name no package registered by itself (dspl.models.registry).
"""

from __future__ import annotations

import difflib
import logging

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import adapt_input_conv
from timm.models.vgg import ConvMlp as VggConvMlp
from torch import nn
from torchvision import models

from dspl.errors import DsplError
from dspl.models.registry import Backbone, register_fallback, registered_names
from dspl.models.weights import check_downloadable, check_has_pretrained, load_matching, offline_message

log = logging.getLogger(__name__)

# DeepSpectrumLite name -> timm / torchvision name; None: no PyTorch equivalent.
DSL_BACKBONES: dict[str, str | None] = {
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "resnet50": "resnet50",
    "xception": "legacy_xception",
    "inception_v3": "inception_v3",
    "densenet121": "densenet121",
    "densenet169": "densenet169",
    "densenet201": "densenet201",
    "mobilenet": "mobilenetv1_100",
    "mobilenet_v2": "mobilenetv2_100",
    "nasnet_large": "nasnetalarge",
    "nasnet_mobile": None,
    "inception_resnet_v2": "inception_resnet_v2",
    "squeezenet_v1": "squeezenet1_0",
}

# Suggestions for DeepSpectrumLite names without an equivalent, before difflib's matches.
_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "nasnet_mobile": ("mnasnet_100", "mobilenetv2_100", "nasnetalarge", "pnasnet5large"),
}

TORCHVISION_BACKBONES: tuple[str, ...] = ("squeezenet1_0", "squeezenet1_1")


class SqueezeNetFeatures(nn.Module):
    """torchvision SqueezeNet's convolutional trunk with global average pooling (no classifier)."""

    def __init__(self, version: str) -> None:
        super().__init__()
        self.features = getattr(models, version)(weights=None).features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return pooled features [B, 512]."""
        return torch.flatten(self.pool(self.features(x)), 1)


def _close_matches(name: str) -> list[str]:
    """Up to five known names resembling ``name``."""
    arch = name.split(".", 1)[0]
    if arch != name and timm.is_model(arch):
        return timm.list_pretrained(f"{arch}.*")[:5]
    usable = [dsl for dsl, target in DSL_BACKBONES.items() if target is not None]
    pool = list(dict.fromkeys([*usable, *TORCHVISION_BACKBONES, *registered_names(), *timm.list_models()]))
    return difflib.get_close_matches(name.lower(), pool, n=5, cutoff=0.5)


def _is_timm_model(name: str) -> bool:
    """True for a timm architecture name, or ``arch.tag`` with a tag timm knows."""
    if "." not in name:
        return timm.is_model(name)
    return name in timm.list_pretrained(name)


def resolve_backbone_name(name: str) -> str:
    """Map a ``basemodel_name`` to the timm/torchvision model name; DsplError with suggestions if none."""
    key = name.strip()
    if key in DSL_BACKBONES:
        target = DSL_BACKBONES[key]
        if target is None:
            hints = list(dict.fromkeys([*_ALTERNATIVES.get(key, ()), *_close_matches(key)]))
            raise DsplError(f"basemodel_name: {key!r} has no PyTorch port in timm or torchvision; "
                            f"choose another backbone, e.g. {', '.join(hints)}")
        return target
    if key in TORCHVISION_BACKBONES or _is_timm_model(key):
        return key
    matches = _close_matches(key)
    hint = f" (did you mean {', '.join(matches)}?)" if matches else ""
    raise DsplError(f"basemodel_name: unknown backbone {key!r}{hint}; expected a DeepSpectrumLite name "
                    f"({', '.join(DSL_BACKBONES)}) or any name from timm.list_models()")


@register_fallback
def build_backbone(name: str, pretrained: bool, in_chans: int) -> Backbone:
    """A DeepSpectrumLite name's or a timm name's backbone (torchvision's for SqueezeNet), pretrained or random."""
    name = resolve_backbone_name(name)
    if name in TORCHVISION_BACKBONES:
        return _torchvision_squeezenet(name, pretrained, in_chans)
    return _timm_backbone(name, pretrained, in_chans)


def _timm_backbone(name: str, pretrained: bool, in_chans: int) -> Backbone:
    if pretrained:
        check_has_pretrained(name)
        check_downloadable(name)
    try:
        module = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="avg",
                                   in_chans=in_chans)
    except (OSError, RuntimeError, ValueError) as err:
        if not pretrained:
            raise
        log.debug("loading pretrained weights of %s failed", name, exc_info=err)
        raise DsplError(offline_message(name, err)) from err
    cfg = module.pretrained_cfg
    if isinstance(getattr(module, "pre_logits", None), VggConvMlp):
        # Keras' VGG without its top, DeepSpectrumLite's base, ends at the last conv block: drop fc6/fc7 (as
        # convolutions), which also pool plots under 224x224 up to 7x7, an operator ONNX cannot export.
        module.pre_logits = nn.Identity()
        width = module.num_features
    else:
        # Models with a pre-logits head (MobileNetV3, LCNet, ...) output head_hidden_size features.
        width = getattr(module, "head_hidden_size", None) or module.num_features
    return Backbone(module, name, width, tuple(cfg.get("mean", IMAGENET_DEFAULT_MEAN)),
                    tuple(cfg.get("std", IMAGENET_DEFAULT_STD)))


def _torchvision_squeezenet(name: str, pretrained: bool, in_chans: int) -> Backbone:
    module = SqueezeNetFeatures(name)
    if pretrained:
        weights_enum = getattr(models, f"SqueezeNet{name[-3:]}_Weights").IMAGENET1K_V1
        try:
            state = weights_enum.get_state_dict(progress=False)
        except (OSError, RuntimeError, ValueError) as err:
            raise DsplError(
                f"weights: 'imagenet' weights for torchvision {name!r} are not available offline "
                f"({type(err).__name__}). Download {weights_enum.url} once into the torch hub cache "
                f"({torch.hub.get_dir()}/checkpoints), or set weights to a local weights file, or to '' "
                "for random initialisation") from err
        load_matching(module, state, ("classifier",), "features.0.weight", f"torchvision {name}")
    if in_chans != 3:
        first = module.features[0]
        conv = nn.Conv2d(in_chans, first.out_channels, first.kernel_size, first.stride, first.padding)
        with torch.no_grad():
            conv.weight.copy_(adapt_input_conv(in_chans, first.weight))
            conv.bias.copy_(first.bias)
        module.features[0] = conv
    return Backbone(module, name, module.num_features, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
