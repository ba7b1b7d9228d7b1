"""What one hyper-parameter key is (its type, default, choices, range, help) and the check every value passes.

A key is a dataclass field of one part of a configuration (dspl.config.settings); its ``Key`` lives in the
field's metadata and its type is the field's annotation. `check_value` is the one check of a single value: the
grid file's values pass it with the name the user wrote, and every part of a configuration passes it again when
it is built (from a grid, a model file or LightningCLI), so no configuration exists that skipped it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable

from dspl.errors import DsplError
from dspl.files import NAME_MAX

REQUIRED = dataclasses.MISSING
"""The default of a key that must be given."""
KEY = "dspl_key"
"""Where a field's metadata holds its Key."""


class ConfigError(DsplError):
    """A bad value, without the file it came from: the loader that read it prefixes its source (`in_source`)."""

    def in_source(self, source: str) -> DsplError:
        """The same message, prefixed by ``source`` (a file, and which configuration of it)."""
        return DsplError(f"{source}: {self}")


@dataclass(frozen=True)
class Key:
    """One hyper-parameter: its type (int, float, bool or str), default (REQUIRED when it must be given), choices,
    range check, whether null is allowed, and help.

    ``check`` returns a description of what is expected when a value is out of range, else None.
    """

    type: type
    default: Any = REQUIRED
    check: Callable[[Any], str | None] | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def setting(default: Any = REQUIRED, *, check: Callable[[Any], str | None] | None = None,
            choices: tuple[str, ...] = (), help: str = "") -> Any:
    """A dataclass field that is a hyper-parameter key (its type comes from the annotation, see `keys_of`)."""
    options = {"metadata": {KEY: (default, check, choices, help)}}
    return field(**options) if default is REQUIRED else field(default=default, **options)


@cache
def keys_of(section: type) -> dict[str, Key]:
    """The keys of one part of a configuration, in field order, with their types from the annotations."""
    hints = typing.get_type_hints(section)
    keys = {}
    for item in dataclasses.fields(section):
        if KEY not in item.metadata:
            continue
        default, check, choices, help_text = item.metadata[KEY]
        hint, nullable = hints[item.name], False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            options = [option for option in typing.get_args(hint) if option is not type(None)]
            hint, nullable = options[0], len(options) < len(typing.get_args(hint))
        keys[item.name] = Key(hint, default, check, choices, nullable, help_text)
    return keys


def _finite(value: float) -> bool:
    """Whether a number is finite as a float: not NaN or infinite, nor an integer beyond the float range (whose
    conversion would raise OverflowError)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_value(name: str, key: Key, value: Any) -> Any:
    """A value checked against its key's type, choices and range (ints are accepted for floats and become floats);
    a ConfigError names the key and the value and says what is expected."""
    if value is None and key.nullable:
        return None
    if key.type is bool:
        ok = isinstance(value, bool)
    elif key.type is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not _finite(value):
            raise ConfigError(f"key '{name}': value {json.dumps(value)} is not a finite number")
        value = float(value) if ok else value
    elif key.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, key.type)
    if not ok:
        raise ConfigError(f"key '{name}': value {json.dumps(value)} is not of type {key.type.__name__}")
    if key.choices and value not in key.choices:
        raise ConfigError(f"key '{name}': value {json.dumps(value)} is not one of {', '.join(key.choices)}")
    if key.check is not None:
        problem = key.check(value)
        if problem:
            verdict = "is out of range" if isinstance(value, (int, float)) else "is not a valid value"
            raise ConfigError(f"key '{name}': value {json.dumps(value)} {verdict}, expected {problem}")
    return value


@dataclass(frozen=True)
class Settings:
    """Base of the parts of a configuration: every field is checked (and ints made floats) when one is built."""

    def __post_init__(self) -> None:
        for name, key in keys_of(type(self)).items():
            object.__setattr__(self, name, check_value(name, key, getattr(self, name)))

    def values(self) -> dict[str, Any]:
        """The keys of this part and their values."""
        return {name: getattr(self, name) for name in keys_of(type(self))}


# Range checks shared by several keys: each returns what is expected, or None when the value is in range.

def positive(v: float) -> str | None:
    return None if v > 0 else "a number > 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "a number >= 0"


def unit_interval(v: float) -> str | None:
    return None if 0.0 <= v <= 1.0 else "a number in [0, 1]"


def below_one(v: float) -> str | None:
    return None if 0.0 <= v < 1.0 else "a number in [0, 1)"


def open_unit_interval(v: float) -> str | None:
    return None if 0.0 < v < 1.0 else "a number in (0, 1)"


def in_range(what: str, high: float, low: float | None = None, *,
             above_low: bool = False) -> Callable[[float], str | None]:
    """The range check of a key bounded above by ``high`` (a named limit) and below by ``low`` (None: unbounded;
    ``above_low``: low itself excluded), saying what is expected as '<what> from <low> to <high>',
    '<what> > <low> and up to <high>' or '<what> up to <high>'."""
    if low is None:
        expected = f"{what} up to {high}"
    elif above_low:
        expected = f"{what} > {low} and up to {high}"
    else:
        expected = f"{what} from {low} to {high}"

    def check(v: float) -> str | None:
        above = low is None or (v > low if above_low else v >= low)
        return None if above and v <= high else expected

    return check


SUFFIX_ROOM = 55
"""Bytes of a file name kept free for what dspl appends to a config value that names a folder (`_config_<i>`)."""
NAME_MAX_BYTES = NAME_MAX - SUFFIX_ROOM
"""Longest folder name a config value may become, in UTF-8 bytes."""


def path_component(v: str) -> str | None:
    """The check of every config value that becomes part of a path: a single portable path component (not empty,
    no separator, not '.' or '..', no NUL or other control character, short enough for dspl's suffixes), so that
    every output stays inside the folder the user named."""
    if (not v or v in (".", "..") or "/" in v or "\\" in v or any(ord(c) < 32 or ord(c) == 127 for c in v)
            or len(v.encode("utf-8")) > NAME_MAX_BYTES):
        return (f"one folder name: not empty, not '.' or '..', no '/' or '\\', no control characters, at most "
                f"{NAME_MAX_BYTES} bytes")
    return None
