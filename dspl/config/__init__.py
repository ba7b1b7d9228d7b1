"""Configurations: the hyper-parameter grid → frozen, typed, checked `RunConfig`s, and the class config.

A configuration is read once, at the edge (the CLI, a notebook, a model file), and handed down as one object;
no code below this package reads keys of a configuration by name.
"""

from dspl.config.classes import ClassConfig, check_class_config, load_class_config
from dspl.config.given import GivenConfigs
from dspl.config.grid import (
    expand_grid,
    load_config,
    load_grid,
    parse_grid,
    parse_json,
    read_json,
    select_configurations,
)
from dspl.config.keys import ConfigError
from dspl.config.labels import LabelParserRef
from dspl.config.run import RunConfig
from dspl.config.schema import PREPROCESSING_KEYS, SCHEMA
from dspl.config.space import Range, SearchSpace, load_space, parse_space
from dspl.config.settings import (
    AugmentSettings,
    ExperimentSettings,
    ModelSettings,
    PreprocessingSettings,
    TrainingSettings,
)

__all__ = [
    "PREPROCESSING_KEYS", "SCHEMA", "AugmentSettings", "ClassConfig", "ConfigError", "ExperimentSettings",
    "GivenConfigs", "LabelParserRef", "ModelSettings", "PreprocessingSettings", "Range", "RunConfig", "SearchSpace",
    "TrainingSettings", "check_class_config", "expand_grid", "load_class_config", "load_config", "load_grid",
    "load_space", "parse_grid", "parse_json", "parse_space", "read_json", "select_configurations",
]
