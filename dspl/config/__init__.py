"""Hyper-parameter grid, its schema and the class config."""

from dspl.config.classes import ClassConfig, check_class_config, load_class_config
from dspl.config.grid import (
    HParams,
    expand_grid,
    load_config,
    load_grid,
    parse_grid,
    read_json,
    select_configurations,
    with_defaults,
)
from dspl.config.schema import SCHEMA

__all__ = [
    "SCHEMA", "ClassConfig", "HParams", "check_class_config", "expand_grid", "load_class_config",
    "load_config", "load_grid", "parse_grid", "read_json", "select_configurations", "with_defaults",
]
