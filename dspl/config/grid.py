"""The hyper-parameter grid: a JSON object of lists, expanded to every combination in file order."""

from __future__ import annotations

import difflib
import itertools
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from dspl.config.schema import ALIASES, REQUIRED, SCHEMA, Key
from dspl.errors import DsplError

HParams = dict[str, Any]

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


def _coerce(source: str, name: str, key: Key, value: Any) -> Any:
    """Check one value against its key's type, choices and range; ints are accepted for floats."""
    if value is None and key.nullable:
        return None
    expected = key.type.__name__
    if key.type is bool:
        ok = isinstance(value, bool)
    elif key.type is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        if ok and not math.isfinite(value):
            raise DsplError(f"{source}: key '{name}': value {json.dumps(value)} is not a finite number")
    elif key.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, key.type)
    if not ok:
        raise DsplError(f"{source}: key '{name}': value {json.dumps(value)} is not of type {expected}")
    if key.choices and value not in key.choices:
        raise DsplError(
            f"{source}: key '{name}': value {json.dumps(value)} is not one of {', '.join(key.choices)}"
        )
    if key.check is not None:
        problem = key.check(value)
        if problem:
            raise DsplError(f"{source}: key '{name}': value {json.dumps(value)} is out of range, expected {problem}")
    return value


def _check_combination(source: str, hp: HParams) -> None:
    """Checks that relate several keys of one configuration."""
    def fail(name: str, message: str) -> None:
        raise DsplError(f"{source}: key '{name}': value {json.dumps(hp[name])} {message}")

    if hp["stft_fft_length"] < hp["stft_window_size"]:
        fail("stft_fft_length", f"is shorter than stft_window_size ({hp['stft_window_size']})")
    if hp["upper_edge_hertz"] <= hp["lower_edge_hertz"]:
        fail("upper_edge_hertz", f"must be above lower_edge_hertz ({hp['lower_edge_hertz']})")
    nyquist = hp["sample_rate"] / 2
    if hp["upper_edge_hertz"] > nyquist:
        fail("upper_edge_hertz", f"is above the Nyquist frequency {nyquist:g} of sample_rate {hp['sample_rate']}")
    if hp["num_mfccs"] > hp["num_mel_bins"]:
        fail("num_mfccs", f"exceeds num_mel_bins ({hp['num_mel_bins']})")
    if hp["num_mfccs"] > 0 and not hp["mel_scale"]:
        fail("num_mfccs", "needs mel_scale true (MFCCs are computed from the log-mel spectrogram)")
    if hp["chunk_size"] > 0 and hp["chunk_hop_size"] <= 0:
        fail("chunk_hop_size", "must be > 0 when chunk_size > 0")
    if hp["chunk_size"] <= 0 and not hp["use_plot_images"]:
        fail("chunk_size", "(whole files) needs use_plot_images true: raw features of files of different lengths "
                           "have different shapes, expected chunk_size > 0")
    for low, high in (("da_prob_min", "da_prob_max"), ("cutmix_min", "cutmix_max"),
                      ("specaug_freq_min", "specaug_freq_max"), ("specaug_time_min", "specaug_time_max")):
        if hp[low] > hp[high]:
            fail(low, f"is above {high} ({hp[high]})")
    frame = int(hp["stft_window_size"] * hp["sample_rate"])
    if frame < 2 or int(hp["stft_hop_size"] * hp["sample_rate"]) < 1:
        fail("stft_window_size", f"gives fewer than 2 samples per frame at sample_rate {hp['sample_rate']}")
    if hp["chunk_size"] > 0:
        if int(hp["chunk_hop_size"] * hp["sample_rate"]) < 1:
            fail("chunk_hop_size", f"is less than one sample at sample_rate {hp['sample_rate']}")
        if int(hp["chunk_size"] * hp["sample_rate"]) < frame:
            fail("stft_window_size", f"is longer than a chunk (chunk_size {hp['chunk_size']} s): expected a window "
                                     "that fits into one chunk")


def parse_grid(raw: Any, source: str = "<hp config>") -> dict[str, list[Any]]:
    """Validate a raw grid (JSON object of non-empty lists) and return it with canonical key names."""
    if not isinstance(raw, dict):
        raise DsplError(f"{source}: expected a JSON object of lists, got {type(raw).__name__}")
    grid: dict[str, list[Any]] = {}
    for name, values in raw.items():
        canonical = ALIASES.get(name, name)
        if canonical not in SCHEMA:
            close = difflib.get_close_matches(name, list(SCHEMA) + list(ALIASES), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DsplError(f"{source}: unknown key '{name}'{hint}")
        if not isinstance(values, list):
            raise DsplError(f"{source}: key '{name}': expected a list of values, got {json.dumps(values)}")
        if not values:
            raise DsplError(f"{source}: key '{name}': the list of values is empty, expected at least one value")
        grid[canonical] = [_coerce(source, name, SCHEMA[canonical], v) for v in values]
    missing = [name for name, key in SCHEMA.items() if key.default is REQUIRED and name not in grid]
    if missing:
        raise DsplError(f"{source}: required key '{missing[0]}' is missing" +
                        (f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
    return grid


def with_defaults(hp: Mapping[str, Any]) -> HParams:
    """``hp`` plus the schema default of every optional key it lacks (model files written before a key existed)."""
    return {**{name: key.default for name, key in SCHEMA.items() if key.default is not REQUIRED}, **hp}


def expand_grid(grid: dict[str, list[Any]], source: str = "<hp config>") -> list[HParams]:
    """Every combination in file order, the last key varying fastest, with defaults filled in."""
    names = list(grid)
    configs = []
    for index, values in enumerate(itertools.product(*(grid[n] for n in names))):
        hp = with_defaults(dict(zip(names, values)))
        _check_combination(f"{source} (configuration {index})", hp)
        configs.append(hp)
    return configs


def load_grid(path: str | Path) -> list[HParams]:
    """Read, validate and expand a hyper-parameter file into the list of its configurations."""
    return expand_grid(parse_grid(read_json(path), str(path)), str(path))


def select_configurations(configs: list[HParams], environ: dict[str, str] | None = None) -> list[tuple[int, HParams]]:
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


def load_config(path: str | Path, index: int = 0) -> HParams:
    """One configuration of a grid file (the first by default), e.g. for plotting or export."""
    configs = load_grid(path)
    if not 0 <= index < len(configs):
        raise DsplError(f"{path}: configuration index {index} is outside the grid of {len(configs)} configuration(s)")
    return configs[index]
