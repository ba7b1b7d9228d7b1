"""The hyper-parameter grid: a JSON object of lists, expanded to every combination in file order.

Configuration ``i`` is the i-th element of ``itertools.product`` over the lists, the last key varying fastest;
each becomes a checked `RunConfig` whose label parser is resolved relative to the grid file's folder.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dspl.config.keys import ConfigError, check_value
from dspl.config.labels import LabelParserRef
from dspl.config.run import RunConfig, both_spellings, missing_keys, unknown_key
from dspl.config.schema import ALIASES, SCHEMA
from dspl.errors import DsplError
from dspl.files import regular_file

SLURM_VARIABLE = "SLURM_ARRAY_TASK_ID"
MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects in a JSON file dspl reads: its configs nest three levels at most (object,
list, range object); Python's parser raised RecursionError near its recursion limit (1000 levels by default)."""
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
"""A JSON string (to the end of the text when it is not closed) or a bracket; matching never backtracks."""


class _DuplicateKey(ValueError):
    """A key given twice in one JSON object (json.loads would keep the last silently)."""


class _LongInteger(ValueError):
    """A JSON integer of more digits (its argument) than Python converts (sys.get_int_max_str_digits)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; _DuplicateKey names a key that appears twice."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _integer(digits: str) -> int:
    """A JSON integer; _LongInteger (with its number of digits) for one Python does not convert."""
    try:
        return int(digits)
    except ValueError:
        raise _LongInteger(len(digits.lstrip("-"))) from None


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in JSON text (brackets in strings do not count), in one linear pass."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def parse_json(text: str | bytes, source: str) -> Any:
    """JSON text a user gave or edited (a config file, the configs stored in a model file); a DsplError names
    ``source`` for a syntax error, a key given twice in one object (json.loads would keep the last silently), bytes
    that are no Unicode text, arrays and objects nested deeper than MAX_JSON_DEPTH or an integer longer than Python
    converts (json.loads would raise RecursionError or ValueError)."""
    try:
        if isinstance(text, bytes):  # decoded as json.loads decodes bytes
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        depth = _nesting(text)
        if depth > MAX_JSON_DEPTH:
            raise DsplError(f"{source}: not valid JSON: arrays and objects nested {depth} levels deep, expected at "
                            f"most {MAX_JSON_DEPTH}")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_integer)
    except UnicodeDecodeError as exc:
        raise DsplError(f"{source}: not valid JSON: not {exc.encoding.upper()} text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise DsplError(f"{source}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise DsplError(f"{source}: key '{exc}' is given twice, expected each key once") from None
    except _LongInteger as exc:
        raise DsplError(f"{source}: not valid JSON: an integer of {exc.args[0]} digits, expected at most "
                        f"{sys.get_int_max_str_digits()} (Python's limit)") from None


def read_json(path: str | Path) -> Any:
    """Read a JSON file the user gives (see parse_json); a DsplError names a missing file or one that is not a
    regular file."""
    path = regular_file(path, "file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DsplError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_json(text, str(path))


def canonical_key(name: str) -> str:
    """The schema name of a key as the user wrote it (aliases accepted); a ConfigError names an unknown key."""
    canonical = ALIASES.get(name, name)
    if canonical not in SCHEMA:
        raise unknown_key(name)
    return canonical


def parse_values(name: str, values: Any) -> list[Any]:
    """A key's non-empty list of values, each checked against the key (a ConfigError names the key and value)."""
    if not isinstance(values, list):
        raise ConfigError(f"key '{name}': expected a list of values, got {json.dumps(values)}")
    if not values:
        raise ConfigError(f"key '{name}': the list of values is empty, expected at least one value")
    return [check_value(name, SCHEMA[canonical_key(name)], v) for v in values]


def check_required(names: Iterable[str]) -> None:
    """A ConfigError when a required key is not among ``names`` (canonical names)."""
    given = set(names)
    missing = [name for name, key in SCHEMA.items() if key.required and name not in given]
    if missing:
        raise missing_keys(missing)


def parse_grid(raw: Any, source: str = "<hp config>") -> dict[str, list[Any]]:
    """Validate a raw grid (JSON object of non-empty lists) and return it with canonical key names."""
    if not isinstance(raw, dict):
        raise DsplError(f"{source}: expected a JSON object of lists, got {type(raw).__name__}")
    try:
        grid: dict[str, list[Any]] = {}
        for name, values in raw.items():
            canonical = canonical_key(name)
            if canonical in grid:
                raise both_spellings(canonical)
            grid[canonical] = parse_values(name, values)
        check_required(grid)
    except ConfigError as exc:
        raise exc.in_source(source) from None
    return grid


def build_configuration(values: Mapping[str, Any], source: str, search_dirs: tuple[Path, ...] = ()) -> RunConfig:
    """One checked configuration of key/value pairs read from a file; a relative `label_parser` file is looked up
    in ``search_dirs``, then the working directory."""
    dirs = (*search_dirs, Path.cwd())
    return RunConfig.from_dict(values, source, lambda text: LabelParserRef.resolve(text, dirs))


def expand_grid(grid: Mapping[str, list[Any]], source: str = "<hp config>",
                search_dirs: tuple[Path, ...] = ()) -> list[RunConfig]:
    """Every combination in file order, the last key varying fastest, as checked configurations.

    A relative `label_parser` file is looked up in ``search_dirs``, then the working directory.
    """
    names = list(grid)
    return [build_configuration(dict(zip(names, values)), f"{source} (configuration {index})", search_dirs)
            for index, values in enumerate(itertools.product(*(grid[n] for n in names)))]


def load_grid(path: str | Path) -> list[RunConfig]:
    """Read, validate and expand a hyper-parameter file into the list of its configurations."""
    return expand_grid(parse_grid(read_json(path), str(path)), str(path), (Path(path).resolve().parent,))


def select_configurations(configs: list[RunConfig],
                          environ: Mapping[str, str] | None = None) -> list[tuple[int, RunConfig]]:
    """The (index, configuration) pairs to run: all of them, or the one SLURM_ARRAY_TASK_ID names."""
    environ = os.environ if environ is None else environ
    task = environ.get(SLURM_VARIABLE)
    if task is None or task == "":
        return list(enumerate(configs))
    try:
        index = int(task)
    except ValueError:
        raise DsplError(f"{SLURM_VARIABLE}={task!r} is not an integer") from None
    if not 0 <= index < len(configs):
        raise DsplError(
            f"{SLURM_VARIABLE}={index} is outside the grid: it has {len(configs)} configuration(s), "
            f"0 to {len(configs) - 1}"
        )
    return [(index, configs[index])]


def load_config(path: str | Path, index: int = 0) -> RunConfig:
    """One configuration of a grid file (the first by default), e.g. for plotting or export."""
    configs = load_grid(path)
    if not 0 <= index < len(configs):
        raise DsplError(f"{path}: configuration index {index} is outside the grid of {len(configs)} configuration(s)")
    return configs[index]
