"""Recognising a DeepSpectrumLite Keras `model.h5` and reading its model config, without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py

from dspl.config import parse_json
from dspl.errors import DsplError
from dspl.files import regular_file

# Root attributes of a whole Keras model saved as HDF5 (tf.keras 2.x `model.save(..., save_format="h5")`).
KERAS_MODEL_ATTRIBUTES = ("keras_version", "model_config")
# Attributes that any Keras/TensorFlow `.h5` file (a whole model, or weights only) may carry at its root.
KERAS_MARKERS = ("keras_version", "backend", "model_config", "layer_names")
# DeepSpectrumLite's model class: a Keras Model subclass holding input -> backbone -> pooling -> head.
DSL_MODEL_CLASS = "AugmentableModel"
WEIGHTS_GROUP = "model_weights"


def _root_attributes(path: str | Path) -> set[str]:
    """The names of the root attributes of an HDF5 file (none for a file h5py cannot read)."""
    try:
        with h5py.File(path, "r") as f:
            return set(f.attrs)
    except (OSError, ValueError):
        return set()


def is_keras_file(path: str | Path) -> bool:
    """Whether path is a readable HDF5 file with a whole Keras model in it (any Keras model, DSL's or not)."""
    return set(KERAS_MODEL_ATTRIBUTES) <= _root_attributes(path)


def has_keras_markers(path: str | Path) -> bool:
    """Whether path is a readable HDF5 file that Keras wrote (a whole model or only weights)."""
    return bool(set(KERAS_MARKERS) & _root_attributes(path))


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The Keras model config of a DeepSpectrumLite model file; DsplError for any other (or damaged) file."""
    path = regular_file(path, "model file")
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            has_weights = WEIGHTS_GROUP in f
    except (OSError, KeyError, ValueError) as exc:
        raise DsplError(f"{path}: cannot read the Keras model file (truncated or corrupt?): {exc}") from None
    config = parse_json(raw, f"{path} (its Keras model config)")
    if not isinstance(config, dict):
        raise DsplError(f"{path}: its Keras model config is not a JSON object (corrupt file?)")
    kind = config.get("class_name")
    if kind != DSL_MODEL_CLASS or not has_weights or backbone_layer(config) is None:
        raise DsplError(f"{path}: a Keras model ({kind}) but not one DeepSpectrumLite trained (expected an "
                        f"{DSL_MODEL_CLASS} with a backbone model and '{WEIGHTS_GROUP}')")
    return config


def backbone_layer(config: dict[str, Any]) -> dict[str, Any] | None:
    """The nested backbone model's layer entry of a DeepSpectrumLite model config (None if there is none)."""
    nested = [layer for layer in config.get("config", {}).get("layers", [])
              if layer.get("class_name") in ("Functional", "Model", "Sequential")]
    return nested[0] if len(nested) == 1 else None


def backbone_training_flag(config: dict[str, Any]) -> bool:
    """Whether DeepSpectrumLite called the backbone with training=True (models trained from scratch)."""
    return any(isinstance(inbound, list) and len(inbound) > 3 and inbound[3].get("training") is True
               for node in backbone_layer(config).get("inbound_nodes", []) for inbound in node)


def has_batch_norm(config: dict[str, Any]) -> bool:
    """Whether the backbone holds BatchNormalization layers (their statistics depend on the training flag)."""
    return any(layer.get("class_name") == "BatchNormalization"
               for layer in backbone_layer(config)["config"].get("layers", []))


def in_inference_mode(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config whose backbone call says training=False (moving BatchNorm statistics)."""
    config = json.loads(json.dumps(config))
    for node in backbone_layer(config).get("inbound_nodes", []):
        for inbound in node:
            if isinstance(inbound, list) and len(inbound) > 3 and "training" in inbound[3]:
                inbound[3]["training"] = False
    return config


def _activation_name(value: Any) -> str:
    """A Keras Dense layer's serialised activation as a dspl activation name ('ARelu' is 'arelu')."""
    name = value.get("config") if isinstance(value, dict) else value
    return str(name).lower()


def head_activations(config: dict[str, Any]) -> tuple[str, str]:
    """The activation of the head's dense layer and the output activation, as the Keras model config has them."""
    dense = [layer["config"] for layer in config["config"]["layers"] if layer.get("class_name") == "Dense"]
    if len(dense) != 2:
        raise DsplError(f"expected DeepSpectrumLite's two Dense layers in the model's head, found {len(dense)}")
    return _activation_name(dense[0]["activation"]), _activation_name(dense[1]["activation"])
