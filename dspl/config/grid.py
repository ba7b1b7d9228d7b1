"""The hyper-parameter grid: a JSON object of lists, expanded to every combination in file order.

Configuration ``i`` is the i-th element of ``itertools.product`` over the lists, the last key varying fastest;
each becomes a checked `RunConfig` whose label parser is resolved relative to the grid file's folder.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dspl.config.keys import ConfigError, check_value
from dspl.config.labels import LabelParserRef
from dspl.config.run import RunConfig, missing_keys, unknown_key
from dspl.config.schema import ALIASES, SCHEMA
from dspl.errors import DsplError

SLURM_VARIABLE = "SLURM_ARRAY_TASK_ID"


def read_json(path: str | Path) -> Any:
    """Read a JSON file, turning a missing file or a syntax error into a DsplError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DsplError(f"{path}: file not found") from None
    except OSError as exc:
        raise DsplError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DsplError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None


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
        grid = {canonical_key(name): parse_values(name, values) for name, values in raw.items()}
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
            f"{SLURM_VARIABLE}={index} is outside the grid: it has {len(configs)} configuration(s), 0 to {len(configs) - 1}"
        )
    return [(index, configs[index])]


def load_config(path: str | Path, index: int = 0) -> RunConfig:
    """One configuration of a grid file (the first by default), e.g. for plotting or export."""
    configs = load_grid(path)
    if not 0 <= index < len(configs):
        raise DsplError(f"{path}: configuration index {index} is outside the grid of {len(configs)} configuration(s)")
    return configs[index]
