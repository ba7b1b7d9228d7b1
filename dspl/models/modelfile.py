"""The model file format (`model.h5`): a versioned HDF5 header, the configs as JSON and every state-dict tensor.

Written with h5py; read back without building the model. The configs stored in a file pass the same checks as a
grid file's (dspl.config.RunConfig.from_dict), and the label parser a file names is never imported. A Lightning
checkpoint (`model.ckpt`) written by dspl training is read the same way, with torch's `weights_only`.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import torch

from dspl.config import ClassConfig, LabelParserRef, RunConfig, parse_json
from dspl.errors import DsplError
from dspl.files import atomic_path, regular_file
from dspl.version import __version__

FORMAT = "dspl-model"
FORMAT_VERSION = 1
STATE_GROUP = "state_dict"


@dataclass
class ModelFile:
    """What a model file holds: the configuration and classes it was trained with, its tensors, and its header
    attributes (format, versions; a checkpoint's Lightning version and epoch)."""

    config: RunConfig
    classes: ClassConfig
    state: dict[str, torch.Tensor]
    header: dict[str, Any]


def _to_numpy(tensor: torch.Tensor) -> tuple[np.ndarray, str]:
    """A tensor as a numpy array of the same bits, and its torch dtype name (bfloat16 travels as uint16)."""
    tensor = tensor.detach().cpu().contiguous()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.uint16).numpy(), dtype
    return tensor.numpy(), dtype


def _from_numpy(array: np.ndarray, dtype: str) -> torch.Tensor:
    """The inverse of _to_numpy."""
    tensor = torch.from_numpy(np.array(array))  # a copy that keeps 0-d scalars 0-d
    if dtype == "bfloat16":
        return tensor.view(torch.bfloat16)
    return tensor


def save_model_file(path: str | Path, model: torch.nn.Module, config: RunConfig, classes: ClassConfig,
                    input_shape: Sequence[int] | None = None) -> Path:
    """Write a model file atomically (temp file in the same directory, then rename) so it is never half-written.

    ``input_shape`` is the model input without the batch axis (e.g. [3, 224, 224]); it is stored for readers
    such as export and stats, and defaults to the input shape of the configuration's preprocessing spec.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if input_shape is None:
        input_shape = config.spec.input_shape()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["dspl_version"] = str(__version__)
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["hp"] = json.dumps(config.to_dict())
        f.attrs["classes"] = json.dumps(classes.to_dict())
        f.attrs["backbone"] = config.model.basemodel_name
        f.attrs["input_shape"] = np.asarray(list(input_shape), dtype=np.int64)
        group = f.create_group(STATE_GROUP)
        for name, tensor in model.state_dict().items():
            if "/" in name:
                raise DsplError(f"{path}: state-dict key '{name}' contains '/', which HDF5 cannot name")
            array, dtype = _to_numpy(tensor)
            dataset = group.create_dataset(name, data=array)
            dataset.attrs["dtype"] = dtype
    return path


def is_model_file(path: str | Path) -> bool:
    """Whether path is a readable HDF5 file with dspl's model-file header."""
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT
    except (OSError, ValueError):
        return False


def _check_header(path: Path, f: h5py.File) -> None:
    """Reject files that are not dspl models with a message that says what they are and what to do."""
    attrs = f.attrs
    if attrs.get("format") != FORMAT:
        raise DsplError(f"{path}: not a dspl model file (HDF5 without the '{FORMAT}' header)")
    version = int(attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise DsplError(
            f"{path}: model file format version {version} was written by a newer dspl "
            f"({attrs.get('dspl_version', '?')}); this dspl reads version {FORMAT_VERSION}: upgrade dspl"
        )
    if version < 1 or STATE_GROUP not in f:
        raise DsplError(f"{path}: damaged dspl model file (format version {version}, "
                        f"'{STATE_GROUP}' group present: {STATE_GROUP in f})")


def torch_load_safely(path: Path, what: str) -> Any:
    """torch.load with weights_only: a file holding Python objects other than tensors and plain data is refused
    before any of them is built (so none of its code runs), and any failure is one DsplError line
    `<path>: not <what> …`, without torch's advice to retry unsafely."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise DsplError(f"{path}: not {what}: it holds Python objects other than tensors and plain data, "
                            "which dspl never loads") from None
        raise DsplError(f"{path}: not {what} (or truncated): it cannot be unpickled") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise DsplError(f"{path}: not {what} (or truncated): {str(exc).strip().splitlines()[0]}") from None


def stored_config(values: Any, path: Path) -> RunConfig:
    """The configuration a model file stores, checked as a grid file's; its label parser is never imported."""
    if not isinstance(values, dict):
        raise DsplError(f"{path}: the stored configuration is not a JSON object")
    return RunConfig.from_dict(values, f"{path} (stored configuration)",
                               lambda text: LabelParserRef.from_model_file(text, str(path)))


def read_checkpoint(path: Path) -> ModelFile:
    """The same as read_model_file for a Lightning checkpoint (`model.ckpt`) that DsplModule wrote (loaded with
    torch_load_safely)."""
    checkpoint = torch_load_safely(path, "a checkpoint written by dspl training")
    try:
        hparams = checkpoint["hyper_parameters"]
        config = stored_config(hparams["hp"], path)
        classes = ClassConfig.from_dict(dict(hparams["classes"]), f"{path} (class config)")
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise DsplError(f"{path}: not a checkpoint written by dspl training (or truncated): {exc}") from None
    header = {"format": "lightning-checkpoint", "lightning_version": checkpoint.get("pytorch-lightning_version", "?"),
              "epoch": checkpoint.get("epoch")}
    return ModelFile(config, classes, state, header)


def read_model_file(path: str | Path) -> ModelFile:
    """The configuration, classes, state dict and header attributes of a model file (`.h5`, or a Lightning
    `.ckpt`), without building the model."""
    path = regular_file(path, "model file")
    if path.suffix == ".ckpt":
        return read_checkpoint(path)
    try:
        with h5py.File(path, "r") as f:
            _check_header(path, f)
            config = stored_config(parse_json(f.attrs["hp"], f"{path} (stored configuration)"), path)
            classes = ClassConfig.from_dict(parse_json(f.attrs["classes"], f"{path} (class config)"),
                                            f"{path} (class config)")
            state = {name: _from_numpy(ds[()], ds.attrs["dtype"]) for name, ds in f[STATE_GROUP].items()}
            header = {key: f.attrs[key] for key in f.attrs if key not in ("hp", "classes")}
    except DsplError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DsplError(f"{path}: cannot read the model file (truncated or corrupt?): {exc}") from None
    return ModelFile(config, classes, state, header)
