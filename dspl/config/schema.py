"""Typed schema of every hyper-parameter key DeepSpectrumLite documented, plus dspl's few additions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from dspl.spec import COLOR_MAPS, RESIZE_METHODS

REQUIRED = object()

OPTIMIZERS = ("adam", "adadelta", "sgd", "adagrad", "ftrl", "nadam", "rmsprop")
PREDICTION_TYPES = ("categorical", "regression")


@dataclass(frozen=True)
class Key:
    """One hyper-parameter: its type, default (REQUIRED when it must be given) and an optional check.

    ``check`` returns a description of what is expected when the value is out of range, else None.
    ``preprocessing``: the key decides what a model computes from a chunk of audio (see PREPROCESSING_KEYS).
    """

    type: type
    default: Any = REQUIRED
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] = field(default=())
    nullable: bool = False
    help: str = ""
    preprocessing: bool = False


def _preprocessing(type_: type, default: Any = REQUIRED, **options: Any) -> Key:
    """A key of the preprocessing section (Key with preprocessing=True)."""
    return Key(type_, default, preprocessing=True, **options)


def _positive(v: float) -> str | None:
    return None if v > 0 else "a number > 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "a number >= 0"


def _unit_interval(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else "a number in [0, 1]"


def _dropout(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else "a number in [0, 1)"


NAME_MAX_BYTES = 200
"""Longest folder name a config value may become, in UTF-8 bytes: file systems allow 255, and dspl appends
suffixes such as `_config_<i>`."""


def _path_component(v: str) -> str | None:
    """A value that names one folder: a single portable path component, so every output stays inside -md."""
    if (not v or v in (".", "..") or "/" in v or "\\" in v or any(ord(c) < 32 or ord(c) == 127 for c in v)
            or len(v.encode("utf-8")) > NAME_MAX_BYTES):
        return (f"one folder name: not empty, not '.' or '..', no '/' or '\\', no control characters, at most "
                f"{NAME_MAX_BYTES} bytes")
    return None


SCHEMA: dict[str, Key] = {
    # model
    "label_parser": Key(str, help="label parser: 'file.py:Class' or the built-in ComParE parser"),
    "prediction_type": Key(str, "categorical", choices=PREDICTION_TYPES),
    "model_name": Key(str, "TransferBaseModel", choices=("TransferBaseModel",)),
    "basemodel_name": Key(str, help="DeepSpectrumLite backbone name or any timm model name"),
    "weights": Key(str, "imagenet", help="'imagenet', '' (random init) or a path to a weights file"),
    "tb_experiment": Key(str, check=_path_component, help="folder name of the experiment under logs/ and models/"),
    "tb_run_id": Key(str, check=_path_component, help="folder name prefix of each configuration's run"),
    "num_units": Key(int, check=_positive),
    "dropout": Key(float, check=_dropout),
    "optimizer": Key(str, choices=OPTIMIZERS),
    "learning_rate": Key(float, check=_positive),
    "fine_learning_rate": Key(float, None, check=_non_negative, nullable=True,
                              help="learning rate after pre_epochs; null or 0 keeps learning_rate"),
    "lr_decay": Key(str, "none", choices=("none", "cosine"),
                    help="dspl: 'cosine' decays each phase's learning rate along a half cosine over its epochs"),
    "finetune_layer": Key(float, check=_unit_interval),
    "loss": Key(str),
    "activation": Key(str),
    "output_activation": Key(str, None, nullable=True,
                             help="null: softmax for categorical, linear for regression"),
    "pre_epochs": Key(int, check=_non_negative),
    "epochs": Key(int, 0, check=_non_negative),
    "batch_size": Key(int, check=_positive),
    "seed": Key(int, 42, check=_non_negative, help="dspl: random seed of the run"),
    # preprocessing
    "sample_rate": _preprocessing(int, check=_positive),
    "normalize_audio": _preprocessing(bool, False),
    "chunk_size": _preprocessing(float, help="seconds; <= 0 takes each file whole"),
    "chunk_hop_size": _preprocessing(float),
    "stft_window_size": _preprocessing(float, check=_positive),
    "stft_hop_size": _preprocessing(float, check=_positive),
    "stft_fft_length": _preprocessing(float, check=_positive),
    "mel_scale": _preprocessing(bool),
    "lower_edge_hertz": _preprocessing(float, check=_non_negative),
    "upper_edge_hertz": _preprocessing(float, check=_positive),
    "num_mel_bins": _preprocessing(int, 128, check=_positive),
    "num_mfccs": _preprocessing(int, 0, check=_non_negative),
    "cep_lifter": _preprocessing(int, check=_non_negative),
    "db_scale": _preprocessing(bool),
    "top_db": _preprocessing(float, None, check=_positive, nullable=True,
                             help="dspl: dB features floor at this many dB below each chunk's peak; null: no floor"),
    "use_plot_images": _preprocessing(bool),
    "color_map": _preprocessing(str, choices=COLOR_MAPS),
    "image_width": _preprocessing(int, check=_positive),
    "image_height": _preprocessing(int, check=_positive),
    "anti_alias": _preprocessing(bool, True),
    "resize_method": _preprocessing(str, "bilinear", choices=RESIZE_METHODS),
    # augmentation
    "sap_aug_a": Key(float, check=_positive),
    "sap_aug_s": Key(float, check=_positive),
    "augment_cutmix": Key(bool),
    "augment_specaug": Key(bool),
    "augment_stretch": Key(bool, False, help="dspl: random time and frequency stretching (speaking rate, VTLP)"),
    "da_prob_min": Key(float, 0.1, check=_unit_interval),
    "da_prob_max": Key(float, 0.5, check=_unit_interval),
    "cutmix_min": Key(float, 0.075, check=_unit_interval),
    "cutmix_max": Key(float, 0.25, check=_unit_interval),
    "specaug_freq_min": Key(float, 0.1, check=_unit_interval),
    "specaug_freq_max": Key(float, 0.3, check=_unit_interval),
    "specaug_time_min": Key(float, 0.1, check=_unit_interval),
    "specaug_time_max": Key(float, 0.3, check=_unit_interval),
    "specaug_freq_mask_num": Key(int, 1, check=_non_negative),
    "specaug_time_mask_num": Key(int, 1, check=_non_negative),
    "stretch_time_max": Key(float, 0.2, check=_non_negative,
                            help="dspl: time scales reach 1/(1+x) .. 1+x at full SapAugment strength"),
    "stretch_freq_max": Key(float, 0.1, check=_non_negative,
                            help="dspl: frequency scales reach 1/(1+x) .. 1+x at full SapAugment strength"),
}

# Spellings DeepSpectrumLite's README table used beside the ones its example files use.
ALIASES: dict[str, str] = {"num_unit": "num_units"}

PREPROCESSING_KEYS: tuple[str, ...] = tuple(name for name, key in SCHEMA.items() if key.preprocessing)
"""Hyper-parameters that decide what a model computes from a chunk of audio: PreprocessingSpec.from_hp reads
them, exports carry them in their metadata, and a model's stored values of them are checked against a config."""
