"""Checks that config files given beside a model file agree with the configs stored inside it."""

from __future__ import annotations

from pathlib import Path

from dspl.config import ClassConfig, HParams, load_class_config, load_grid
from dspl.config.schema import PREPROCESSING_KEYS
from dspl.errors import DsplError

# Keys that change what the model computes from audio; training-only keys may differ freely.
MODEL_KEYS = ("prediction_type", "basemodel_name", *PREPROCESSING_KEYS)


def check_hp_config(model_hp: HParams, hp_config: str | Path, model_file: str | Path) -> None:
    """A DsplError unless some configuration of the grid file preprocesses audio as the model does."""
    configs = load_grid(hp_config)
    differences = [([k for k in MODEL_KEYS if config[k] != model_hp[k]], config) for config in configs]
    diff, closest = min(differences, key=lambda pair: len(pair[0]))
    if not diff:
        return
    key = diff[0]
    raise DsplError(
        f"{hp_config}: no configuration matches the model {model_file}: key '{key}' is "
        f"{closest[key]!r} in the config but {model_hp[key]!r} in the model (omit -hc to use the model's own)"
    )


def check_class_config_matches(classes: ClassConfig, class_config: str | Path, model_file: str | Path) -> None:
    """A DsplError unless the class config file lists the model's classes in the model's order."""
    given = load_class_config(class_config)
    if given.labels != classes.labels:
        raise DsplError(
            f"{class_config}: classes {list(given.labels)} differ from the model's {list(classes.labels)} "
            f"({model_file}); omit -cc to use the model's own"
        )


def check_configs(model_hp: HParams, classes: ClassConfig, model_file: str | Path,
                  hp_config: str | Path | None, class_config: str | Path | None) -> None:
    """Check whichever of the optional config files were given against the model."""
    if hp_config is not None:
        check_hp_config(model_hp, hp_config, model_file)
    if class_config is not None:
        check_class_config_matches(classes, class_config, model_file)
