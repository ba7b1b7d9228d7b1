"""The hyper-parameter and class configs of a DeepSpectrumLite Keras model, which the file itself lacks."""

from __future__ import annotations

import re
from pathlib import Path

from dspl.config import ClassConfig, GivenConfigs, RunConfig
from dspl.errors import DsplError


def legacy_configs(model_path: str | Path, given: GivenConfigs) -> tuple[RunConfig, ClassConfig]:
    """The configuration and classes a DeepSpectrumLite model was trained with, from -hc and -cc.

    As DeepSpectrumLite's own predict did, a grid of several configurations is indexed by the number that ends
    the model's folder name (`<tb_run_id>_config_<i>`).
    """
    model_path = Path(model_path)
    missing = [flag for flag, value in (("-hc HP_CONFIG", given.hp_path), ("-cc CLASS_CONFIG", given.class_path))
               if value is None]
    if missing:
        raise DsplError(f"{model_path}: a DeepSpectrumLite Keras model does not hold its configs: pass the "
                        f"hyper-parameter and class configs it was trained with ({' and '.join(missing)} missing)")
    configs = given.grid
    if len(configs) == 1:
        return configs[0], given.classes
    match = re.search(r"_(\d+)$", model_path.parent.name)
    if match is None or int(match.group(1)) >= len(configs):
        raise DsplError(f"{given.hp_path}: {len(configs)} configurations, and the model's folder "
                        f"'{model_path.parent.name}' does not end in the index of one (`_<i>`, i < "
                        f"{len(configs)}): pass a config file with the model's configuration only")
    return configs[int(match.group(1))], given.classes
