"""Weights of a backbone that do not come with it: local weight files, and whether 'imagenet' ones can be had.

A weights file (`weights: path`) is a PyTorch state dict (`.pth`, `.pt`, `.bin`, read with torch's
`weights_only`), a `.safetensors` file or a dspl model file (its backbone's tensors). 'imagenet' weights come
from the Hugging Face hub or a URL through timm; without network or cache that fails within seconds with advice.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from timm.models import adapt_input_conv
from torch import nn

from dspl.errors import DsplError
from dspl.files import regular_file
from dspl.models.modelfile import is_model_file, read_model_file, torch_load_safely

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".bin", ".safetensors")
# Seconds to wait for the one connection that tells whether uncached weights can be downloaded at all.
CONNECT_TIMEOUT = 5.0
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def check_has_pretrained(name: str) -> None:
    """A DsplError unless timm knows pretrained ImageNet weights of ``name``."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise DsplError(f"weights: timm model {name!r} has no pretrained ImageNet weights; set weights to "
                        "'' (random init) or to a local weights file")


def check_downloadable(name: str) -> None:
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
            raise DsplError(offline_message(name, OSError("HF_HUB_OFFLINE is set")))
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
        raise DsplError(offline_message(name, err)) from None


def offline_message(name: str, err: Exception) -> str:
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


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a torch pickle (unwrapping 'state_dict'/'model' entries)."""
    if not os.path.lexists(path):
        raise DsplError(f"weights: file not found: {path}; expected 'imagenet', '' or a path to a "
                        f"weights file ({', '.join(WEIGHT_SUFFIXES)})")
    try:
        regular_file(path, "weights file")
    except DsplError as exc:
        raise DsplError(f"weights: {exc}") from None
    if path.suffix.lower() in (".h5", ".hdf5") and is_model_file(path):  # e.g. one `dspl import-keras` wrote
        return read_model_file(path).state
    if path.suffix.lower() in (".h5", ".hdf5", ".keras"):
        raise DsplError(f"weights: {path}: Keras weight files cannot be loaded into a PyTorch backbone; "
                        f"expected 'imagenet', '' or a PyTorch state dict ({', '.join(WEIGHT_SUFFIXES)}) or dspl "
                        "model file (a DeepSpectrumLite model.h5 converts with `dspl import-keras`)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
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


def load_backbone_weights(module: nn.Module, path: Path) -> None:
    """Load a local state dict into a backbone module: strict on backbone keys, classifier-head keys ignored.

    Accepts a plain backbone/timm/torchvision state dict, one wrapped in 'state_dict'/'model', a DDP
    one ('module.' prefixes) or a dspl SpectrumClassifier state dict (its 'backbone.' entries are used).
    """
    state = read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    cfg = getattr(module, "pretrained_cfg", None) or {}
    heads = cfg.get("classifier", "classifier")
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    first_conv = cfg.get("first_conv", "features.0")
    first_conv = first_conv[0] if isinstance(first_conv, (tuple, list)) else first_conv
    load_matching(module, state, heads, f"{first_conv}.weight", str(path))
    log.info("loaded backbone weights from %s", path)


def load_matching(module: nn.Module, state: dict[str, torch.Tensor], heads: tuple[str, ...],
                   first_conv_key: str, source: str) -> None:
    """Load ``state`` into ``module`` requiring every module key; extra keys only under ``heads``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own and not any(k == h or k.startswith(h + ".") for h in heads)]
    if first_conv_key in state and first_conv_key in own and state[first_conv_key].ndim == 4:
        in_chans = own[first_conv_key].shape[1]
        if state[first_conv_key].shape[1] != in_chans:
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
