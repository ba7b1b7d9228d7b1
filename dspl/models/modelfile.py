"""The model file (`model.h5`): a versioned HDF5 header, the configs as JSON and every state-dict tensor."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import torch

from dspl import __version__
from dspl.config import ClassConfig, HParams, with_defaults
from dspl.errors import DsplError
from dspl.files import atomic_path
from dspl.spec import PreprocessingSpec

FORMAT = "dspl-model"
FORMAT_VERSION = 1
STATE_GROUP = "state_dict"
# Attributes that legacy Keras/TensorFlow `.h5` models carry at their root.
KERAS_MARKERS = ("keras_version", "backend", "model_config", "layer_names")


@dataclass
class LoadedModel:
    """A classifier rebuilt from a model file (in eval mode) with the configs it was trained with.

    ``features`` makes its inputs from raw chunks when they are not dspl's own PlotTransform (None).
    """

    model: torch.nn.Module
    hp: HParams
    classes: ClassConfig
    features: torch.nn.Module | None = None


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


def save_model_file(path: str | Path, model: torch.nn.Module, hp: HParams, classes: ClassConfig,
                    input_shape: Sequence[int] | None = None) -> Path:
    """Write a model file atomically (temp file in the same directory, then rename) so it is never half-written.

    ``input_shape`` is the model input without the batch axis (e.g. [3, 224, 224]); it is stored for readers
    such as export and stats, and defaults to the input shape of ``hp``'s preprocessing spec.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if input_shape is None:
        input_shape = PreprocessingSpec.from_hp(hp).input_shape()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["dspl_version"] = str(__version__)
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["hp"] = json.dumps(hp)
        f.attrs["classes"] = json.dumps(classes.to_dict())
        f.attrs["backbone"] = str(hp["basemodel_name"])
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
    fmt = attrs.get("format")
    if fmt != FORMAT:
        if any(marker in attrs for marker in KERAS_MARKERS):
            raise DsplError(
                f"{path}: this is a DeepSpectrumLite/Keras model, not a dspl model file; run it with its "
                "configs (-hc, -cc) or port it with `dspl import-keras`"
            )
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


def read_checkpoint(path: Path) -> tuple[HParams, ClassConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The same as read_model_file for a Lightning checkpoint (`model.ckpt`) that DsplModule wrote (loaded with
    torch_load_safely)."""
    checkpoint = torch_load_safely(path, "a checkpoint written by dspl training")
    try:
        hparams = checkpoint["hyper_parameters"]
        hp = with_defaults(hparams["hp"])
        classes = ClassConfig.from_dict(dict(hparams["classes"]), f"{path} (class config)")
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError, EOFError) as exc:
        raise DsplError(f"{path}: not a checkpoint written by dspl training (or truncated): {exc}") from None
    header = {"format": "lightning-checkpoint", "lightning_version": checkpoint.get("pytorch-lightning_version", "?"),
              "epoch": checkpoint.get("epoch")}
    return hp, classes, state, header


def read_model_file(path: str | Path) -> tuple[HParams, ClassConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The hp, class config, state dict and header attributes of a model file (`.h5`, or a Lightning `.ckpt`),
    without building the model."""
    path = Path(path)
    if path.is_dir():
        raise DsplError(f"{path}: is a directory, expected a model file (model.h5 or model.ckpt)")
    if not path.is_file():
        raise DsplError(f"{path}: model file not found")
    if path.suffix == ".ckpt":
        return read_checkpoint(path)
    try:
        with h5py.File(path, "r") as f:
            _check_header(path, f)
            hp = with_defaults(json.loads(f.attrs["hp"]))
            classes = ClassConfig.from_dict(json.loads(f.attrs["classes"]), f"{path} (class config)")
            state = {name: _from_numpy(ds[()], ds.attrs["dtype"]) for name, ds in f[STATE_GROUP].items()}
            header = {key: f.attrs[key] for key in f.attrs if key not in ("hp", "classes")}
    except DsplError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DsplError(f"{path}: cannot read the model file (truncated or corrupt?): {exc}") from None
    return hp, classes, state, header


def load_model_file(path: str | Path, hp_config: str | Path | None = None,
                    class_config: str | Path | None = None) -> LoadedModel:
    """Rebuild the classifier a model file describes (no config files or downloads needed), in eval mode.

    A DeepSpectrumLite Keras model.h5 is run through TensorFlow instead and needs hp_config and class_config.
    """
    from dspl.legacy.keras_file import is_keras_file
    from dspl.models import create_model

    if is_keras_file(path):
        from dspl.legacy.keras_model import load_legacy_model

        return load_legacy_model(path, hp_config, class_config)
    hp, classes, state, _ = read_model_file(path)
    model = create_model(hp, classes.num_classes, pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DsplError(f"{path}: the stored tensors do not fit the '{hp['basemodel_name']}' model: {first}") from None
    return LoadedModel(model=model.eval(), hp=hp, classes=classes)
