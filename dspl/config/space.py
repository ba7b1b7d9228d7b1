"""The search space of `dspl search`: a hyper-parameter file in DeepSpectrumLite's format, read as choices and ranges.

Every key's list is a categorical choice, a one-element list a constant, and an object
``{"low": a, "high": b}`` (with ``"log": true`` or ``"step": s``) a numeric range. Values are checked as a grid's
are (`parse_values`), the endpoints of a range too, and every trial's configuration is built by the grid's
`build_configuration`, so a trial passes exactly the checks of a `train` configuration. `tb_experiment` and
`tb_run_id` name the output folders, `prediction_type` decides the devel metric: they cannot be searched.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspl.config.grid import build_configuration, canonical_key, check_required, parse_values, read_json
from dspl.config.keys import ConfigError, Key, check_value
from dspl.config.run import RunConfig, both_spellings
from dspl.config.schema import SCHEMA
from dspl.errors import DsplError

RANGE_FIELDS = ("low", "high", "log", "step")
MAX_RANGE_STEPS = 10**9
"""More steps than this are a continuous range; Optuna counts steps in 28-digit decimals (a step of 1e-300 failed
every trial with decimal.DivisionImpossible)."""
CONSTANT_KEYS = ("tb_experiment", "tb_run_id", "prediction_type")
"""Keys a search needs one value of: the folders every trial writes into and the devel metric depend on them."""


@dataclass(frozen=True)
class Range:
    """A numeric range of one key: ``low`` to ``high`` inclusive, sampled on a log scale or in steps of ``step``;
    ``integer`` for int keys (their bounds and step are ints)."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the range (and on its grid of steps, when it has one)."""
        if not self.low <= value <= self.high:
            return False
        return self.step is None or math.isclose(round((value - self.low) / self.step) * self.step,
                                                 value - self.low, rel_tol=1e-9, abs_tol=1e-12)

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step, "integer": self.integer}


@dataclass(frozen=True)
class SearchSpace:
    """A parsed space: constants, choices (two or more values) and ranges by canonical key, in file order; where
    it came from (``source``) and where its relative `label_parser` file is looked up (``search_dirs``)."""

    constants: dict[str, Any]
    choices: dict[str, tuple[Any, ...]]
    ranges: dict[str, Range]
    source: str = "<search space>"
    search_dirs: tuple[Path, ...] = field(default=(), compare=False)

    @property
    def searched(self) -> tuple[str, ...]:
        """The keys a trial samples: the choices, then the ranges."""
        return (*self.choices, *self.ranges)

    def configuration(self, values: Mapping[str, Any], label: str) -> RunConfig:
        """The checked configuration of one trial's sampled ``values`` with the constants; a DsplError names the
        space file, ``label`` (e.g. 'trial 3') and the offending key."""
        unknown = [name for name in values if name not in self.searched]
        if unknown:
            raise DsplError(f"{self.source} ({label}): key '{unknown[0]}' is not searched in this space")
        return build_configuration({**self.constants, **values}, f"{self.source} ({label})", self.search_dirs)

    def first(self) -> RunConfig:
        """The configuration of the first choices and the lower ends of the ranges: checked before a search starts,
        so that a space no trial can use fails at once."""
        values = {name: options[0] for name, options in self.choices.items()}
        values.update({name: span.low for name, span in self.ranges.items()})
        return self.configuration(values, "first choices, lowest values")

    def to_json(self) -> dict[str, Any]:
        """The space as plain data (what a study stores to recognise its space)."""
        return {"constants": self.constants, "choices": {k: list(v) for k, v in self.choices.items()},
                "ranges": {k: v.to_json() for k, v in self.ranges.items()}}


def _number(name: str, key: Key, what: str, value: Any) -> float:
    """A range field checked as one of the key's values (not null)."""
    if value is None:
        raise ConfigError(f"key '{name}': range {what} is null, expected a number")
    return check_value(name, key, value)


def parse_range(name: str, raw: Mapping[str, Any]) -> Range:
    """A range object of key ``name``: numeric key, known fields, low <= high, endpoints valid values of the key,
    a log scale above zero and a step that divides the range (a ConfigError names the key and the problem)."""
    key = SCHEMA[canonical_key(name)]
    if key.type not in (int, float):
        raise ConfigError(f"key '{name}': a range needs a numeric key, this one takes {key.type.__name__} values: "
                          "give a list of choices")
    unknown = [f for f in raw if f not in RANGE_FIELDS]
    if unknown:
        raise ConfigError(f"key '{name}': unknown field '{unknown[0]}' in a range, expected low, high and "
                          "optionally log or step")
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"key '{name}': a range needs both low and high, got {json.dumps(dict(raw))}")
    low, high = (_number(name, key, what, raw[what]) for what in ("low", "high"))
    if low > high:
        raise ConfigError(f"key '{name}': range low {json.dumps(low)} is above high {json.dumps(high)}")
    log, step = raw.get("log", False), raw.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"key '{name}': range log {json.dumps(log)} is not true or false")
    if log and step is not None:
        raise ConfigError(f"key '{name}': a range is either on a log scale or in steps, not both")
    if log and low <= 0:
        raise ConfigError(f"key '{name}': a log range needs low > 0, got {json.dumps(low)}")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, key.type if key.type is int else (int, float)) or step <= 0:
            raise ConfigError(f"key '{name}': range step {json.dumps(step)} is not a {key.type.__name__} > 0")
        if (high - low) / step > MAX_RANGE_STEPS:
            raise ConfigError(f"key '{name}': range step {json.dumps(step)} cuts high - low into more than "
                              f"{MAX_RANGE_STEPS:.0e} steps: leave the step out for a continuous range")
        span = Range(low, high, step=step, integer=key.type is int)
        if not span.contains(high):
            raise ConfigError(f"key '{name}': range step {json.dumps(step)} does not divide high - low "
                              f"({json.dumps(high)} - {json.dumps(low)})")
        return span
    return Range(low, high, log, integer=key.type is int)


def parse_space(raw: Any, source: str = "<search space>", search_dirs: tuple[Path, ...] = ()) -> SearchSpace:
    """Validate a raw space (a JSON object of lists and range objects) into a SearchSpace; a DsplError names
    ``source``, the key and what is expected."""
    if not isinstance(raw, dict) or not raw:
        got = "an empty object" if raw == {} else type(raw).__name__
        raise DsplError(f"{source}: expected a JSON object of lists and ranges ({{\"low\": a, \"high\": b}}), "
                        f"got {got}")
    constants: dict[str, Any] = {}
    choices: dict[str, tuple[Any, ...]] = {}
    ranges: dict[str, Range] = {}
    try:
        for name, value in raw.items():
            canonical = canonical_key(name)
            if canonical in constants or canonical in choices or canonical in ranges:
                raise both_spellings(canonical)
            if isinstance(value, dict):
                ranges[canonical] = parse_range(name, value)
                continue
            if not isinstance(value, list):
                raise ConfigError(f"key '{name}': expected a list of values or a range {{\"low\": a, \"high\": b}}, "
                                  f"got {json.dumps(value)}")
            values = parse_values(name, value)
            repeated = [v for i, v in enumerate(values) if v in values[:i]]
            if repeated:
                raise ConfigError(f"key '{name}': the choice {json.dumps(repeated[0])} is listed twice")
            if len(values) == 1:
                constants[canonical] = values[0]
            else:
                choices[canonical] = tuple(values)
        check_required([*constants, *choices, *ranges])
        for name in CONSTANT_KEYS:
            if name in choices or name in ranges:
                raise ConfigError(f"key '{name}': a search needs one value of this key (the output folders and the "
                                  "devel metric depend on it), got a choice or a range")
    except ConfigError as exc:
        raise exc.in_source(source) from None
    return SearchSpace(constants, choices, ranges, source, search_dirs)


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space file; its relative `label_parser` file is looked up beside it."""
    path = Path(path)
    return parse_space(read_json(path), str(path), (path.resolve().parent,))
