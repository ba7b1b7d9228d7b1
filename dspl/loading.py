"""The one place that decides "dspl model or DeepSpectrumLite model": every command that reads a model file asks here.

A dspl model file (`model.h5`, or the Lightning checkpoint `model.ckpt` beside it) holds its configs; given ones
(`-hc`, `-cc`) are checked against them. A Keras `model.h5` that DeepSpectrumLite trained is run through
TensorFlow by dspl.legacy, with the configs given beside it. What a caller gets is a `LoadedModel` either way,
which says what it can do (see dspl.models.loaded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from dspl.config import GivenConfigs
from dspl.errors import DsplError
from dspl.export.tflite_file import FILE_IDENTIFIER
from dspl.files import regular_file
from dspl.legacy import keras_file
from dspl.legacy.keras_model import load_legacy_image_model, load_legacy_model
from dspl.legacy.keras_stats import keras_model_stats
from dspl.models import LoadedModel, restore_model
from dspl.models.modelfile import read_model_file
from dspl.models.predictor import Predictor
from dspl.models.stats import model_stats as torch_model_stats

NO_CONFIGS = GivenConfigs()


def _trained_model_file(path: str | Path) -> Path:
    """``path`` as a regular file to read a trained model from; a DsplError for a TFLite model given in its place
    (which h5py would call a damaged file)."""
    path = regular_file(path, "model file")
    with path.open("rb") as handle:
        if handle.read(8)[4:] == FILE_IDENTIFIER:
            raise DsplError(f"{path}: a TFLite model, not a model file dspl or DeepSpectrumLite trained: "
                            "`dspl tflite-stats -md` and `dspl benchmark -e` take TFLite models")
    return path


def load_model_file(path: str | Path, given: GivenConfigs = NO_CONFIGS, image_model: bool = False) -> LoadedModel:
    """The model a file holds, in eval mode: a dspl model (``given`` configs are checked against its own) or a
    DeepSpectrumLite Keras model (``given`` are its configs). ``image_model``: only the plots -> scores model is
    wanted (DeepSpectrumLite's `convert`), so a Keras model given without configs is loaded with what its file
    holds and the rest assumed (dspl.legacy.keras_model.load_legacy_image_model)."""
    path = _trained_model_file(path)
    if keras_file.is_keras_file(path):
        if image_model and given.hp_path is None and given.class_path is None:
            return load_legacy_image_model(path)
        return load_legacy_model(path, given)
    if keras_file.has_keras_markers(path):
        raise DsplError(f"{path}: this is a DeepSpectrumLite/Keras model, not a dspl model file; run it with its "
                        "configs (-hc, -cc) or port it with `dspl import-keras`")
    loaded = restore_model(read_model_file(path), path)
    given.check_against(loaded.config, loaded.classes, path)
    return loaded


def load_model(path: str | Path, device: str | torch.device = "cpu", batch_size: int = 64,
               hp_config: str | Path | None = None, class_config: str | Path | None = None) -> Predictor:
    """Load a model file for prediction: a dspl `model.h5` or Lightning `.ckpt` needs no config files; a
    DeepSpectrumLite Keras `model.h5` needs the hyper-parameter and class configs it was trained with."""
    loaded = load_model_file(path, GivenConfigs.read(hp_config, class_config))
    return Predictor(loaded, device=device, batch_size=batch_size)


def model_stats(path: str | Path, runs: int = 20, given: GivenConfigs = NO_CONFIGS) -> dict[str, Any]:
    """Parameters, FLOPs, file size, layers and CPU latency of a model file (a DeepSpectrumLite Keras model is
    measured by TensorFlow and needs no configs)."""
    if keras_file.is_keras_file(_trained_model_file(path)):
        return keras_model_stats(path, runs=runs)
    return torch_model_stats(load_model_file(path, given), runs=runs)
