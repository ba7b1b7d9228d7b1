"""The backbone registry: a name -> the builder of a feature extractor, in timm's `@register_model` manner.

Packages register into it: `register_backbone` names one backbone (dspl.legacy registers its Keras-exact
`keras_*` backbones so, through the `dspl.backbones` entry-point group, which is loaded the first time a name is
not found); `register_fallback` takes every other name (dspl.models.backbones: DeepSpectrumLite's names and any
timm model). `create_backbone` is the one entry point.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from torch import nn

from dspl.errors import DsplError
from dspl.models.weights import load_backbone_weights

ENTRY_POINT_GROUP = "dspl.backbones"


@dataclass
class Backbone:
    """A feature extractor returning pooled features [B, num_features], with its input normalisation."""

    module: nn.Module
    name: str
    num_features: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


Builder = Callable[[str, bool, int], Backbone]
"""builder(name, pretrained, in_chans) -> Backbone: with its 'imagenet' weights when pretrained, else random."""

_BUILDERS: dict[str, Builder] = {}
_FALLBACK: list[Builder] = []
_PLUGINS_LOADED: list[bool] = []


def register_backbone(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``builder`` builds the backbone ``name``."""
    def register(builder: Builder) -> Builder:
        _BUILDERS[name] = builder
        return builder
    return register


def register_fallback(builder: Builder) -> Builder:
    """Decorator: ``builder`` builds every name nothing registered (and raises the DsplError for unknown ones)."""
    _FALLBACK[:] = [builder]
    return builder


def _load_plugins() -> None:
    """Import the modules of the `dspl.backbones` entry points once (they register their backbones)."""
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED.append(True)
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            entry.load()


def registered_names() -> tuple[str, ...]:
    """Every name registered by itself (plug-ins included), sorted."""
    _load_plugins()
    return tuple(sorted(_BUILDERS))


def create_backbone(name: str, weights: str = "", in_chans: int = 3) -> Backbone:
    """The backbone ``name`` (pooled features, no classifier) with ``weights``: 'imagenet', '' (random init) or a
    weights file (dspl.models.weights)."""
    key, source = name.strip(), weights.strip()
    if key not in _BUILDERS:
        _load_plugins()
    builder = _BUILDERS.get(key) or (_FALLBACK[0] if _FALLBACK else None)
    if builder is None:
        raise DsplError(f"basemodel_name: unknown backbone {key!r}")
    pretrained = source.lower() == "imagenet"
    backbone = builder(key, pretrained, in_chans)
    if source and not pretrained:
        load_backbone_weights(backbone.module, Path(source).expanduser())
    return backbone
