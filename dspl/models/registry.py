"""Backbone registry: DeepSpectrumLite ``basemodel_name`` values and timm names → a feature extractor.

DeepSpectrumLite named Keras applications; each maps to the timm model with the same architecture
(torchvision's SqueezeNet where timm has none). Any other timm model name (``arch`` or ``arch.tag``)
is used as is. ``mobilenet`` (Keras MobileNet v1, width 1.0) maps to timm's ``mobilenetv1_100``, a
re-implementation of the same architecture; ``xception`` maps to ``legacy_xception`` (Chollet's
original network, weights ported from Keras) rather than timm's "aligned" ``xception41/65/71``.
``nasnet_mobile`` has no PyTorch port in timm or torchvision and fails with suggestions.
"""

from __future__ import annotations

import difflib
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from timm.models.vgg import ConvMlp as VggConvMlp
from torch import nn

from dspl.errors import DsplError

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
WEIGHT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Seconds to wait for the one connection that tells whether uncached weights can be downloaded at all.
CONNECT_TIMEOUT = 5.0
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class Backbone:
    """A feature extractor returning pooled features [B, num_features], with its input normalisation."""

    module: nn.Module
    name: str
    num_features: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


class SqueezeNetFeatures(nn.Module):
    """torchvision SqueezeNet's convolutional trunk with global average pooling (no classifier)."""

    def __init__(self, version: str) -> None:
        super().__init__()
        from torchvision import models

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
    pool = list(dict.fromkeys([*usable, *TORCHVISION_BACKBONES, *timm.list_models()]))
    return difflib.get_close_matches(name.lower(), pool, n=5, cutoff=0.5)


def _is_timm_model(name: str) -> bool:
    """True for a timm architecture name, or ``arch.tag`` with a tag timm knows."""
    if "." not in name:
        return timm.is_model(name)
    return name in timm.list_pretrained(name)


def resolve_backbone_name(name: str) -> str:
    """Map a ``basemodel_name`` to the timm/torchvision model name; DsplError with suggestions if none."""
    from dspl.legacy.backbones import KERAS_BACKBONES

    key = name.strip()
    if key in KERAS_BACKBONES:
        return key
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


def create_backbone(basemodel_name: str, weights: str = "", in_chans: int = 3) -> Backbone:
    """Build the backbone (pooled features, no classifier) with ``weights``: 'imagenet', '' or a file."""
    name = resolve_backbone_name(basemodel_name)
    source = weights.strip()
    pretrained = source.lower() == "imagenet"
    if name.startswith("keras_"):  # a Keras-exact backbone that `dspl import-keras` ports weights into
        from dspl.legacy.backbones import keras_backbone

        if pretrained:
            raise DsplError(f"weights: {name!r} has no 'imagenet' weights; set weights to a model file written "
                            "by `dspl import-keras`, or to '' for random initialisation")
        backbone = keras_backbone(name, in_chans)
    elif name in TORCHVISION_BACKBONES:
        backbone = _torchvision_squeezenet(name, pretrained, in_chans)
    else:
        backbone = _timm_backbone(name, pretrained, in_chans)
    if source and not pretrained:
        load_backbone_weights(backbone, Path(source).expanduser())
    return backbone


def _timm_backbone(name: str, pretrained: bool, in_chans: int) -> Backbone:
    if pretrained:
        _check_has_pretrained(name)
        _check_downloadable(name)
    try:
        module = timm.create_model(name, pretrained=pretrained, num_classes=0, global_pool="avg",
                                   in_chans=in_chans)
    except (OSError, RuntimeError, ValueError) as err:
        if not pretrained:
            raise
        log.debug("loading pretrained weights of %s failed", name, exc_info=err)
        raise DsplError(_offline_message(name, err)) from err
    cfg = module.pretrained_cfg
    if isinstance(getattr(module, "pre_logits", None), VggConvMlp):
        # Keras' VGG without its top, DeepSpectrumLite's base, ends at the last conv block: drop fc6/fc7 (as
        # convolutions), which also pool plots under 224x224 up to 7x7, an operator ONNX cannot export.
        module.pre_logits = nn.Identity()
        width = module.num_features
    else:
        # Models with a pre-logits head (MobileNetV3, LCNet, ...) output head_hidden_size features.
        width = getattr(module, "head_hidden_size", None) or module.num_features
    return Backbone(module, name, width, tuple(cfg.get("mean", IMAGENET_MEAN)),
                    tuple(cfg.get("std", IMAGENET_STD)))


def _check_has_pretrained(name: str) -> None:
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise DsplError(f"weights: timm model {name!r} has no pretrained ImageNet weights; set weights to "
                        "'' (random init) or to a local weights file")


def _check_downloadable(name: str) -> None:
    """Fail within seconds, not after the hub's retries, when a model's weights are not cached and cannot be
    downloaded: HF_HUB_OFFLINE is set, or one connection to the server fails."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg.hf_hub_id:
        from huggingface_hub import constants, try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        if any(isinstance(try_to_load_from_cache(repo, file, cache_dir=constants.HF_HUB_CACHE,
                                                 revision=revision or None), str) for file in HF_WEIGHT_FILES):
            return
        if constants.HF_HUB_OFFLINE:
            raise DsplError(_offline_message(name, OSError("HF_HUB_OFFLINE is set")))
        server = constants.ENDPOINT
    elif cfg.url:
        if (Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name).is_file():
            return
        server = cfg.url
    else:
        return
    address = urlparse(server)
    try:
        socket.create_connection((address.hostname, address.port or (443 if address.scheme == "https" else 80)),
                                 timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise DsplError(_offline_message(name, err)) from None


def _offline_message(name: str, err: Exception) -> str:
    """Explain how to provide pretrained weights when they cannot be downloaded."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is not None and cfg.hf_hub_id:
        where = (f"Hugging Face hub repo {cfg.hf_hub_id!r}: download it once with network access "
                 f"(e.g. `hf download {cfg.hf_hub_id}`) into the HF cache (HF_HOME; it is used "
                 "offline with HF_HUB_OFFLINE=1)")
    else:
        url = cfg.url if cfg is not None else "?"
        where = (f"{url}: download it once with network access into the torch hub cache "
                 f"({torch.hub.get_dir()}/checkpoints)")
    return (f"weights: 'imagenet' weights for {name!r} are not available offline ({type(err).__name__}). "
            f"They come from the {where}; or set weights to a local .pth/.pt/.bin/.safetensors file, "
            "or to '' for random initialisation")


def _torchvision_squeezenet(name: str, pretrained: bool, in_chans: int) -> Backbone:
    module = SqueezeNetFeatures(name)
    if pretrained:
        from torchvision import models

        weights_enum = getattr(models, f"SqueezeNet{name[-3:]}_Weights").IMAGENET1K_V1
        try:
            state = weights_enum.get_state_dict(progress=False)
        except (OSError, RuntimeError, ValueError) as err:
            raise DsplError(
                f"weights: 'imagenet' weights for torchvision {name!r} are not available offline "
                f"({type(err).__name__}). Download {weights_enum.url} once into the torch hub cache "
                f"({torch.hub.get_dir()}/checkpoints), or set weights to a local weights file, or to '' "
                "for random initialisation") from err
        _load_matching(module, state, ("classifier",), "features.0.weight", f"torchvision {name}")
    if in_chans != 3:
        first = module.features[0]
        conv = nn.Conv2d(in_chans, first.out_channels, first.kernel_size, first.stride, first.padding)
        from timm.models import adapt_input_conv

        with torch.no_grad():
            conv.weight.copy_(adapt_input_conv(in_chans, first.weight))
            conv.bias.copy_(first.bias)
        module.features[0] = conv
    return Backbone(module, name, module.num_features, IMAGENET_MEAN, IMAGENET_STD)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a torch pickle (unwrapping 'state_dict'/'model' entries)."""
    if not path.is_file():
        raise DsplError(f"weights: file not found: {path}; expected 'imagenet', '' or a path to a "
                        f"weights file ({', '.join(WEIGHT_SUFFIXES)})")
    if path.suffix.lower() in (".h5", ".hdf5"):
        from dspl.models.modelfile import is_model_file, read_model_file

        if is_model_file(path):  # a dspl model file, e.g. one `dspl import-keras` wrote
            return read_model_file(path)[2]
    if path.suffix.lower() in (".h5", ".hdf5", ".keras"):
        raise DsplError(f"weights: {path}: Keras weight files cannot be loaded into a PyTorch backbone; "
                        f"expected 'imagenet', '' or a PyTorch state dict ({', '.join(WEIGHT_SUFFIXES)}) or dspl "
                        "model file (a DeepSpectrumLite model.h5 converts with `dspl import-keras`)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            from dspl.models.modelfile import torch_load_safely

            state = torch_load_safely(path, "a state dict")
    except DsplError as err:
        raise DsplError(f"weights: {err}") from None
    except Exception as err:  # any unreadable file is a user error here
        first = (str(err).strip().splitlines() or [""])[0]
        raise DsplError(f"weights: {path}: cannot read a state dict ({type(err).__name__}: {first})") from err
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DsplError(f"weights: {path}: not a state dict (a mapping of names to tensors)")
    return state


def load_backbone_weights(backbone: Backbone, path: Path) -> None:
    """Load a local state dict into the backbone: strict on backbone keys, classifier-head keys ignored.

    Accepts a plain backbone/timm/torchvision state dict, one wrapped in 'state_dict'/'model', a DDP
    one ('module.' prefixes) or a dspl SpectrumClassifier state dict (its 'backbone.' entries are used).
    """
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    cfg = getattr(backbone.module, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier", "classifier")
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    first_conv = cfg.get("first_conv", "features.0")
    first_conv = first_conv[0] if isinstance(first_conv, (tuple, list)) else first_conv
    _load_matching(backbone.module, state, heads, f"{first_conv}.weight", str(path))
    log.info("loaded backbone weights from %s", path)


def _load_matching(module: nn.Module, state: dict[str, torch.Tensor], heads: tuple[str, ...],
                   first_conv_key: str, source: str) -> None:
    """Load ``state`` into ``module`` requiring every module key; extra keys only under ``heads``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own and not any(k == h or k.startswith(h + ".") for h in heads)]
    if first_conv_key in state and first_conv_key in own and state[first_conv_key].ndim == 4:
        in_chans = own[first_conv_key].shape[1]
        if state[first_conv_key].shape[1] != in_chans:
            from timm.models import adapt_input_conv

            state = {**state, first_conv_key: adapt_input_conv(in_chans, state[first_conv_key])}
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched)):
        if items:
            shown = ", ".join(items[:5]) + (f" … ({len(items)} in all)" if len(items) > 5 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise DsplError(f"weights: {source} does not match the backbone ({'; '.join(problems)})")
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
