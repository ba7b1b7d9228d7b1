"""The schema of every hyper-parameter key, derived from the parts of a configuration (dspl.config.settings).

`SCHEMA` maps each key to its `Key` (type, default, choices, range, help) in schema order; `SECTION_OF` names
the part it belongs to; `PREPROCESSING_KEYS` are the keys that decide what a model computes from a chunk of audio
(exports carry them in their metadata, and a model's stored values of them are checked against a config).
"""

from __future__ import annotations

from dspl.config.keys import REQUIRED, Key, keys_of
from dspl.config.settings import LR_DECAYS, OPTIMIZERS, PREDICTION_TYPES, SECTIONS

__all__ = ["ALIASES", "LR_DECAYS", "OPTIMIZERS", "PREDICTION_TYPES", "PREPROCESSING_KEYS", "REQUIRED", "SCHEMA",
           "SECTION_OF", "Key"]

SCHEMA: dict[str, Key] = {name: key for section in SECTIONS.values() for name, key in keys_of(section).items()}
SECTION_OF: dict[str, str] = {name: part for part, section in SECTIONS.items() for name in keys_of(section)}

# Spellings DeepSpectrumLite's README table used beside the ones its example files use.
ALIASES: dict[str, str] = {"num_unit": "num_units"}

PREPROCESSING_KEYS: tuple[str, ...] = tuple(name for name, part in SECTION_OF.items() if part == "preprocessing")
