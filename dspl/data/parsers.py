"""Label parsers: the built-in ComParE CSV parser, the base class for custom ones, and their lookup.

A custom parser (hp config key `label_parser`: "path/to/file.py:ClassName", resolved by the configuration,
dspl.config.labels) is a class constructed with the label file path whose `parse_labels()` returns the
(train, devel, test) partitions. Each partition is a list
of `LabelEntry` (or of `(filename, label[, duration_frames])` tuples); DeepSpectrumLite parsers that return
pandas DataFrames with the columns filename, label, duration_frames work too. Filenames are relative to the
data directory. Subclassing `LabelParser` is recommended, not required.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from dspl.config import ClassConfig, LabelParserRef
from dspl.config.labels import FILE, FROM_MODEL, MISSING
from dspl.errors import DsplError
from dspl.files import regular_file

logger = logging.getLogger(__name__)


class _OncePerProcess(logging.Filter):
    """Lets each warning through once: a command reads one label file several times (each configuration's data,
    then its report), and the same line again says nothing new."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


logger.addFilter(_OncePerProcess())

PARTITIONS = ("train", "devel", "test")
COMPARE_COLUMNS = ("filename", "label", "duration_frames")


@dataclass(frozen=True)
class LabelEntry:
    """One labelled audio file: its path (relative to the data dir, or resolved), label and optional length, and
    the label file's line it came from where the parser knows it (for messages)."""

    path: Path
    label: str | float
    duration_frames: int | None = None
    line: int | None = field(default=None, compare=False)

    def where(self) -> str:
        """The file name as given, with its line where known (`'a.wav' (line 3)`)."""
        return f"'{self.path}'" + (f" (line {self.line})" if self.line is not None else "")


Partitions = tuple[list[LabelEntry], list[LabelEntry], list[LabelEntry]]


class LabelParser:
    """Base class of label parsers: built from a label file path, `parse_labels()` gives train/devel/test."""

    def __init__(self, file_path: str | Path):
        self._file_path = Path(file_path)

    def parse_labels(self) -> Partitions:
        """The (train, devel, test) lists of LabelEntry with paths relative to the data directory."""
        raise NotImplementedError


def partition_of(filename: str) -> str | None:
    """The ComParE partition a file name's prefix names ('train', 'devel', 'test'), or None."""
    name = Path(filename).name
    return next((p for p in PARTITIONS if filename.startswith(p) or name.startswith(p)), None)


class ComParEParser(LabelParser):
    """ComParE label CSV `filename,label[,duration_frames]`; the partition is the file name's prefix."""

    def __init__(self, file_path: str | Path, delimiter: str = ","):
        super().__init__(file_path)
        self._delimiter = delimiter

    def _rows(self) -> tuple[list[str], list[tuple[int, list[str]]]]:
        """Header and (line number, fields) of every non-blank row."""
        path = regular_file(self._file_path, "label file")
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                lines = list(csv.reader(handle, delimiter=self._delimiter))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DsplError(f"{path}: cannot read the label file: {exc}") from None
        numbered = [(n, [f.strip() for f in row]) for n, row in enumerate(lines, 1) if any(f.strip() for f in row)]
        if not numbered:
            raise DsplError(f"{path}: label file is empty, expected a header line {','.join(COMPARE_COLUMNS)}")
        return numbered[0][1], numbered[1:]

    def parse_labels(self) -> Partitions:
        path = self._file_path
        header, rows = self._rows()
        missing = [c for c in COMPARE_COLUMNS[:2] if c not in header]
        if missing:
            raise DsplError(
                f"{path}: missing column(s) {', '.join(missing)}: expected the header "
                f"filename,label[,duration_frames], found {','.join(header)}"
            )
        name_col, label_col = header.index("filename"), header.index("label")
        duration_col = header.index("duration_frames") if "duration_frames" in header else None
        partitions: dict[str, list[LabelEntry]] = {p: [] for p in PARTITIONS}
        ignored: list[str] = []
        for line, fields in rows:
            if len(fields) != len(header):
                raise DsplError(f"{path}: line {line}: expected {len(header)} fields ({','.join(header)}), "
                                f"found {len(fields)}")
            filename, label = fields[name_col], fields[label_col]
            if not filename or not label:
                raise DsplError(f"{path}: line {line}: empty {'filename' if not filename else 'label'}")
            duration = _duration(path, line, fields[duration_col]) if duration_col is not None else None
            partition = partition_of(filename)
            if partition is None:
                ignored.append(filename)
            else:
                partitions[partition].append(LabelEntry(Path(filename), label, duration, line))
        if ignored:
            logger.warning("%s: ignored %d row(s) whose file name starts with none of %s: %s", path,
                           len(ignored), "/".join(PARTITIONS), first_few(ignored))
        return partitions["train"], partitions["devel"], partitions["test"]


def _duration(path: Path, line: int, value: str) -> int | None:
    """An optional duration_frames field: empty means unknown."""
    if not value:
        return None
    try:
        frames = int(float(value))
    except ValueError:
        frames = -1
    if frames < 0:
        raise DsplError(f"{path}: line {line}: duration_frames '{value}' is not a non-negative integer")
    return frames


def first_few(items: Sequence[Any], count: int = 5) -> str:
    """The first few items of a list, and how many more there are (control characters escaped: one line)."""
    shown = ", ".join(_printable(str(i)) for i in items[:count])
    return shown + (f" (and {len(items) - count} more)" if len(items) > count else "")


def _printable(text: str) -> str:
    """``text`` with its control characters (a newline quoted into a CSV field) written as escapes."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in text)


def _load_class(file: Path, class_name: str, spec: str) -> type:
    """Import a parser class from a Python file; its own directory is importable while it loads."""
    module_name = f"dspl_label_parser_{abs(hash(str(file.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, file)
    if module_spec is None or module_spec.loader is None:
        raise DsplError(f"label_parser '{spec}': {file} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    logger.warning("label_parser '%s': running the Python code of %s", spec, file.resolve())
    sys.path.insert(0, str(file.parent))
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the user's code: any failure becomes one clear line
        raise DsplError(f"label_parser '{spec}': importing {file} failed: {_failure(exc)}") from exc
    finally:
        sys.path.remove(str(file.parent))
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise DsplError(f"label_parser '{spec}': {file} defines no class '{class_name}'")
    return cls


def _failure(exc: BaseException) -> str:
    """What user code did instead of returning: raised an exception, called sys.exit, or raised KeyboardInterrupt."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}), expected it to return"
    if isinstance(exc, KeyboardInterrupt):
        return "it raised KeyboardInterrupt (or Ctrl-C was pressed)"
    return f"{type(exc).__name__}: {exc}"


def parser_class(ref: LabelParserRef) -> type:
    """The parser class a resolved `label_parser` names: the built-in ComParE parser, or a class imported from its
    file. A parser named in a model file is never imported: its labels are read with the built-in parser."""
    if ref.kind == FILE:
        return _load_class(ref.file, ref.class_name, ref.text)
    if ref.kind == MISSING:
        looked = ", ".join(str(d) for d in ref.searched) or "nowhere: no directory to search"
        raise DsplError(f"label_parser '{ref.text}': file {ref.file} not found (looked in: {looked})")
    if ref.kind == FROM_MODEL:
        logger.warning("%s names the label parser '%s': dspl runs no code named in a model file and reads the "
                       "labels with the built-in ComParE parser (give your hp config with -hc to use that parser)",
                       ref.origin, ref.text)
    return ComParEParser


def _entry(item: Any, source: str) -> LabelEntry:
    """A LabelEntry from what a parser returned: a LabelEntry, a tuple or a record dict."""
    if isinstance(item, LabelEntry):
        return item
    if isinstance(item, dict):
        item = (item.get("filename"), item.get("label"), item.get("duration_frames"))
    if isinstance(item, (tuple, list)) and 2 <= len(item) <= 3 and item[0] is not None and item[1] is not None:
        duration = item[2] if len(item) == 3 else None
        if isinstance(duration, float) and math.isnan(duration):
            duration = None
        try:
            return LabelEntry(Path(str(item[0])), item[1], None if duration is None else int(duration))
        except (TypeError, ValueError):
            raise DsplError(f"{source}: {item[0]}: duration_frames {duration!r} is not an integer") from None
    raise DsplError(f"{source}: expected LabelEntry(path, label) or (filename, label[, duration_frames]), got {item!r}")


def _entries(partition: Any, source: str) -> list[LabelEntry]:
    """A partition as a list of LabelEntry; pandas DataFrames are read through their records."""
    if hasattr(partition, "to_dict"):
        partition = partition.to_dict("records")
    try:
        items = list(partition)
    except TypeError:
        raise DsplError(f"{source}: expected a list of label entries, got {type(partition).__name__}") from None
    return [_entry(item, source) for item in items]


def parse_label_file(label_file: str | Path, parser: LabelParserRef) -> Partitions:
    """Parse a label file with the parser a configuration names; the result is checked and normalised."""
    label_file = regular_file(label_file, "label file")
    cls = parser_class(parser)
    source = f"label_parser '{parser.text}'"
    try:
        result = cls(str(label_file)).parse_labels()
    except DsplError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the user's parser code: one clear line
        raise DsplError(f"{source}: parsing {label_file} failed: {_failure(exc)}") from exc
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise DsplError(f"{source}: parse_labels() must return (train, devel, test), got {type(result).__name__}")
    partitions = [_entries(p, f"{source}: {name}") for p, name in zip(result, PARTITIONS)]
    train, devel, test = _without_duplicates(partitions, label_file)
    return train, devel, test


def _without_duplicates(partitions: list[list[LabelEntry]], label_file: Path) -> list[list[LabelEntry]]:
    """The partitions with repeated rows dropped (warned); a DsplError for a file given two labels, or named twice
    in two spellings (`a.wav`, `sub/../a.wav`): which of them an output should name is ambiguous."""
    seen: dict[str, tuple[str, LabelEntry]] = {}
    repeated: list[str] = []
    kept: list[list[LabelEntry]] = []
    for name, entries in zip(PARTITIONS, partitions):
        kept.append([])
        for entry in entries:
            first = seen.setdefault(os.path.normpath(entry.path), (name, entry))
            if first[1] is entry:
                kept[-1].append(entry)
            elif str(first[1].path) != str(entry.path):
                raise DsplError(f"{label_file}: {first[1].where()} and {entry.where()} name the same file: expected "
                                "each file once")
            elif str(first[1].label) != str(entry.label):
                raise DsplError(f"{label_file}: {entry.path} has two labels, '{first[1].label}' and "
                                f"'{entry.label}': expected one label per file")
            elif first[0] != name:
                raise DsplError(f"{label_file}: {entry.path} is in both the {first[0]} and the {name} partition: "
                                "expected each file in one partition")
            else:
                repeated.append(str(entry.path))
    if repeated:
        logger.warning("%s: %d repeated row(s) ignored (each file counts once): %s", label_file, len(repeated),
                       first_few(repeated))
    return kept


def encode_targets(entries: Sequence[LabelEntry], classes: ClassConfig, categorical: bool,
                   source: str | Path) -> list[int] | list[float]:
    """Targets of entries: class indices (categorical) or floats (regression); DsplError on a bad label."""
    if categorical:
        return [classes.index(str(e.label), f"{source}: {e.path}") for e in entries]
    targets = []
    for e in entries:
        try:
            value = float(e.label)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise DsplError(f"{source}: {e.path}: regression label '{e.label}' is not a finite number")
        targets.append(value)
    return targets


def check_files_exist(entries: Iterable[LabelEntry], data_dir: Path, label_file: str | Path) -> None:
    """DsplError for a file name leaving data_dir (absolute, or '..' in it), one naming a FIFO, socket or device
    (it would block its reader), or one listing the first few (and counting) label file entries with no audio
    file in data_dir."""
    entries = list(entries)
    for entry in entries:
        if entry.path.is_absolute() or Path(os.path.normpath(entry.path)).parts[:1] == ("..",):
            raise DsplError(f"{label_file}: file name '{entry.path}' leaves the data directory {data_dir}: "
                            "expected a path relative to it, inside it")
        if (data_dir / entry.path).exists():
            regular_file(data_dir / entry.path, "audio file")
    absent = [str(e.path) for e in entries if not (data_dir / e.path).is_file()]
    if absent:
        respelled = [name for name in absent
                     if any((data_dir / unicodedata.normalize(form, name)).is_file() for form in ("NFC", "NFD"))]
        hint = (f"; {first_few(respelled)}: the data directory has a file of the same letters in another Unicode "
                "form (composed or decomposed accents): spell them alike") if respelled else ""
        raise DsplError(f"{label_file}: names {len(absent)} audio file(s) absent from the data directory "
                        f"{data_dir}: {first_few(absent)}{hint}")
