"""Which label parser a configuration names, resolved where the configuration was read.

`label_parser` is DeepSpectrumLite's built-in ComParE parser (`../lib/data/parser/ComParEParser.py:ComParEParser`,
`ComParEParser` or `compare`) or `file.py:Class`, a class in a Python file found relative to the hp config's
folder, then the working directory. A configuration read from a model file names a parser that dspl never
imports: a model file carries data, never code (dspl.data.parsers reads such labels with the built-in parser).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from dspl.config.keys import ConfigError
from dspl.errors import DsplError
from dspl.files import regular_file

COMPARE_SPEC = "../lib/data/parser/ComParEParser.py:ComParEParser"
BUILTIN_NAMES = frozenset({COMPARE_SPEC.lower(), "compareparser", "compare"})

BUILTIN, FILE, MISSING, FROM_MODEL = "builtin", "file", "missing", "from-model"


@dataclass(frozen=True)
class LabelParserRef:
    """A `label_parser` value and what it resolved to: the built-in parser, a class in a file that exists
    (``file``), a file that was not found (``searched`` lists where it was looked for), or a parser named in a
    model file (``origin``), which is never imported."""

    text: str
    kind: str = BUILTIN
    file: Path | None = None
    class_name: str | None = None
    searched: tuple[Path, ...] = ()
    origin: str = ""

    @classmethod
    def builtin(cls) -> "LabelParserRef":
        """The built-in ComParE parser."""
        return cls(COMPARE_SPEC)

    @classmethod
    def resolve(cls, text: str, search_dirs: Iterable[Path]) -> "LabelParserRef":
        """Resolve a value from a config file; a relative file is looked up in ``search_dirs`` in order. The first
        path that exists is the file: a ConfigError says what it is when it is not a regular file."""
        if text.strip().lower() in BUILTIN_NAMES:
            return cls(text)
        file_part, separator, class_name = text.rpartition(":")
        if not separator or not file_part or not class_name:
            raise ConfigError(f"label_parser '{text}': expected 'path/to/file.py:ClassName' or 'ComParEParser'")
        file = Path(file_part)
        candidates = [file] if file.is_absolute() else [Path(d) / file for d in search_dirs]
        found = next((c for c in candidates if os.path.exists(c)), None)
        if found is not None:
            try:
                return cls(text, FILE, regular_file(found, "label parser file").resolve(), class_name)
            except DsplError as exc:  # a directory, named pipe or device where the file should be
                raise ConfigError(f"label_parser '{text}': {exc}") from None
        if file.name == "ComParEParser.py" and class_name == "ComParEParser":
            return cls(text)  # DeepSpectrumLite's parser under another relative path
        return cls(text, MISSING, file, class_name, tuple(c.parent for c in candidates))

    @classmethod
    def from_model_file(cls, text: str, origin: str) -> "LabelParserRef":
        """The parser a model file names: built-in, or one that is never imported (``origin`` names the file)."""
        is_builtin = text.strip().lower() in BUILTIN_NAMES or text.endswith("ComParEParser.py:ComParEParser")
        return cls(text) if is_builtin else cls(text, FROM_MODEL, origin=origin)
