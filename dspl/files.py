"""Crash-safe output files: atomic writes, several outputs committed as one unit, and the clean-up of killed runs.

A `kill -9` at any moment must lose nothing that existed before. A single file is written to a temporary
name beside its destination and renamed onto it (`atomic_path`). Several outputs that belong together (a
model file and its checkpoint, every artefact of an export) are staged completely first; then a journal
listing the renames is written atomically, the renames run, and the journal is removed (`commit`). A run
killed while renaming leaves the journal behind, and the next run that writes into that folder finishes
the renames (`recover`) before anything else, so the folder never keeps a mix of old and new outputs.

Temporary names carry the writing process's id, so the next run removes only what dead processes left.

A write that fails because of the file system (full, read-only, not permitted, a name too long) raises an
OSError that names the destination, not its temporary, and leaves the destination as it was; the CLI prints
such an error as one line (`file_system_message`). Inputs that must be regular files are checked before they
are opened (`regular_file`): a FIFO or a device would block a reader forever.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from dspl.errors import DsplError

log = logging.getLogger(__name__)

JOURNAL = ".dspl-commit.json"
STAGING_PREFIX = ".dspl-staging-"
TRASH_PREFIX = ".dspl-replaced-"
WORK_PREFIX = "dspl-"
# .<name>.<pid>-<hex>.tmp (atomic_path), .dspl-staging-<pid>-<hex>, .dspl-replaced-<pid>-<hex>, dspl-<kind>-<pid>-<hex>
_OWNED = re.compile(r"^(?:\..+\.|\.dspl-staging-|\.dspl-replaced-|dspl-[a-z0-9]+-)(\d+)-[0-9a-f]{8,32}(?:\.tmp)?$")


def _token() -> str:
    """<pid>-<random hex>: unique, and tells later runs which process a temporary belongs to."""
    return f"{os.getpid()}-{uuid.uuid4().hex}"


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


NAME_MAX = 255
"""Longest file name (one path component) in bytes that Linux file systems allow."""

FILE_SYSTEM_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG,
    errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ELOOP, errno.EMLINK, errno.EXDEV, errno.ENXIO, errno.ENODEV,
    errno.EBUSY, errno.ETXTBSY, errno.EIO,
})
"""The errnos of a path or file system the user chose that cannot take (or give) the file: a user error, not a bug."""


def file_system_message(exc: OSError) -> str | None:
    """``<path>: <reason>`` for an OSError of FILE_SYSTEM_ERRNOS (the CLI's one line), else None (a bug)."""
    if exc.errno not in FILE_SYSTEM_ERRNOS:
        return None
    reason = exc.strerror or os.strerror(exc.errno)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def regular_file(path: str | Path, what: str) -> Path:
    """``path`` if it is a regular file (a link to one counts); else a DsplError naming it and what it is.

    Checked before a file is opened: opening a FIFO waits for a writer, reading a device may never end.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DsplError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DsplError(f"{path}: cannot use it as the {what}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise DsplError(f"{path}: is {_kind(mode)}, expected a regular file ({what})")
    return path


def _kind(mode: int) -> str:
    """What a path that is not a regular file is, for a message."""
    return ("a directory" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a regular file")


def replaceable(destination: str | Path) -> Path:
    """``destination`` if an output may be renamed onto it: absent, a file, a folder or a link; a DsplError for a
    named pipe, socket or device, which a rename would silently replace (as root, `-d /dev/null` would take the
    system's /dev/null)."""
    destination = Path(destination)
    try:
        mode = os.lstat(destination).st_mode
    except OSError:  # absent, or not reachable: the write itself says why
        return destination
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
        raise DsplError(f"{destination}: is {_kind(mode)}; an output replaces only a regular file: name a file or "
                        "a new path")
    return destination


def _disk_full(path: Path) -> bool:
    """Whether the file system that holds (or would hold) ``path`` has no block left for this user."""
    try:
        return os.statvfs(path if path.is_dir() else path.parent).f_bavail == 0
    except OSError:
        return False


@contextmanager
def naming(destination: str | Path) -> Iterator[None]:
    """Failures of writing ``destination`` (through a temporary beside it) as OSErrors that name it.

    OSErrors of FILE_SYSTEM_ERRNOS keep their errno and get destination as their path, unless they name another
    file than a temporary beside it; a failure of another kind (torch reports a full disk as a RuntimeError, h5py
    without an errno) while the file system is full becomes ENOSPC.
    """
    destination = Path(destination)
    try:
        yield
    except DsplError:
        raise
    except Exception as exc:
        code = exc.errno if isinstance(exc, OSError) else None
        if code not in FILE_SYSTEM_ERRNOS:
            if not _disk_full(destination):
                raise
            code = errno.ENOSPC
        named = getattr(exc, "filename", None)
        if named is not None and not _is_temporary_of(Path(named), destination):
            raise
        raise OSError(code, os.strerror(code), str(destination)) from exc


def _is_temporary_of(path: Path, destination: Path) -> bool:
    """Whether path is a temporary (`temporary_path`) beside destination, or destination itself."""
    return path == destination or (path.parent == destination.parent and path.name.startswith(".")
                                   and path.name.endswith(".tmp"))


def temporary_path(destination: str | Path) -> Path:
    """A fresh name `.<name>.<pid>-<hex>.tmp` beside destination (its folder is created); a long name is cut
    so that the temporary's fits wherever the destination's does."""
    destination = Path(destination)
    with naming(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
    token = _token()
    room = NAME_MAX - len(f"..{token}.tmp".encode())
    name = destination.name.encode()[:room].decode(errors="ignore")
    return destination.with_name(f".{name}.{token}.tmp")


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside destination; rename it onto destination when the block succeeds.

    Readers never see a half-written file, and a failed write leaves no temporary file behind (see `naming`).
    """
    temporary = temporary_path(replaceable(destination))
    try:
        with naming(destination):
            yield temporary
            os.replace(temporary, Path(destination))
    finally:
        remove(temporary)


@contextmanager
def atomic_open(destination: str | Path, mode: str = "wb", encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO]:
    """A new file opened for writing that replaces destination when the block succeeds (`atomic_path`).

    For writers that infer a format from the name (matplotlib, PIL, numpy), pass the format explicitly: the
    file object has the temporary's name.
    """
    with atomic_path(destination) as temporary, open(temporary, mode.replace("w", "x"), encoding=encoding,
                                                     newline=newline) as file:
        yield file


def write_atomically(destination: str | Path, data: bytes) -> Path:
    """Write bytes to destination atomically."""
    with atomic_open(destination) as file:
        file.write(data)
    return Path(destination)


def write_text_atomically(destination: str | Path, text: str) -> Path:
    """Write UTF-8 text to destination atomically."""
    return write_atomically(destination, text.encode("utf-8"))


def save_figure(figure: Any, destination: str | Path, **options: Any) -> Path:
    """Save a matplotlib figure atomically, in the format its name's suffix says (``options`` go to savefig).

    A title holding characters the font lacks (a file name in Japanese) shows them as boxes; matplotlib's warning
    about each one, with its source line, is not printed.
    """
    destination = Path(destination)
    with atomic_open(destination) as file, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        figure.savefig(file, format=destination.suffix.lstrip(".").lower(), **options)
    return destination


def save_array(destination: str | Path, array: Any) -> Path:
    """Save a numpy array as an `.npy` file atomically."""
    import numpy as np

    with atomic_open(destination) as file:
        np.save(file, array)
    return Path(destination)


def remove(path: Path) -> None:
    """Remove a file or a folder tree; nothing if it is gone (not even on a read-only file system, where unlinking
    a missing file fails)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink(missing_ok=True)


def clean_stale(folder: str | Path) -> list[Path]:
    """Remove the temporaries, staging and replaced folders that dead processes left in ``folder``; returns them.

    A pending journal is completed first (`recover`), since its staged files are not leftovers.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    recover(folder)
    removed = []
    for path in folder.iterdir():
        match = _OWNED.match(path.name)
        if match and not path.name.startswith(WORK_PREFIX) and not _alive(int(match.group(1))):
            remove(path)
            removed.append(path)
    if removed:
        log.info("%s: removed %d leftover(s) of killed runs: %s", folder, len(removed),
                 ", ".join(p.name for p in removed))
    return removed


def clean_stale_work_dirs() -> list[Path]:
    """Remove the `dspl-<kind>-<pid>-…` work folders that dead processes left in the temporary directory."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        match = _OWNED.match(path.name)
        if match and path.name.startswith(WORK_PREFIX) and not _alive(int(match.group(1))):
            remove(path)
            removed.append(path)
    return removed


@contextmanager
def work_dir(kind: str) -> Iterator[Path]:
    """A private temporary folder `dspl-<kind>-<pid>-<hex>`, removed afterwards; killed runs' ones are cleaned
    by the next run that asks for one."""
    clean_stale_work_dirs()
    path = Path(tempfile.gettempdir()) / f"{WORK_PREFIX}{kind}-{_token()}"
    path.mkdir()
    try:
        yield path
    finally:
        remove(path)


def staging_dir(folder: str | Path) -> Path:
    """A fresh staging folder inside ``folder`` (same file system, so its contents can be renamed into place)."""
    path = Path(folder) / f"{STAGING_PREFIX}{_token()}"
    path.mkdir(parents=True)
    return path


def commit(moves: Mapping[str | Path, str | Path]) -> None:
    """Rename every staged path onto its destination (files or folders, all in one folder) as one unit.

    The journal makes the unit survive a kill: once it is written the next `recover` finishes the renames.
    """
    if not moves:
        return
    pairs = [(Path(staged), replaceable(destination)) for staged, destination in moves.items()]
    folder = pairs[0][1].parent
    if any(destination.parent != folder for _, destination in pairs):
        raise ValueError("commit: every destination must be in one folder")
    journal = {"moves": [[os.path.relpath(s, folder), d.name] for s, d in pairs]}
    write_atomically(folder / JOURNAL, json.dumps(journal).encode())
    recover(folder)


def recover(folder: str | Path) -> None:
    """Finish the renames of a journal a killed `commit` left in ``folder`` (nothing if there is none)."""
    folder = Path(folder)
    journal = folder / JOURNAL
    if not journal.is_file():
        return
    try:
        moves = json.loads(journal.read_text())["moves"]
    except (ValueError, KeyError) as exc:
        raise DsplError(f"{journal}: damaged commit journal ({exc}); remove it and re-run") from None
    for staged_name, name in moves:
        staged, destination = folder / staged_name, folder / name
        if not staged.exists():
            continue  # renamed already
        if destination.is_dir() and not destination.is_symlink():
            trash = folder / f"{TRASH_PREFIX}{_token()}"
            os.replace(destination, trash)
            os.replace(staged, destination)
            remove(trash)
        else:
            os.replace(staged, destination)
    journal.unlink()
    for staged_name, _ in moves:
        parent = (folder / staged_name).parent
        if parent != folder and parent.name.startswith(STAGING_PREFIX):
            remove(parent)


def prepare_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` (and parents) and check it is writable; a DsplError names the path and the problem."""
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DsplError(f"{path}: cannot use it as the {what}: {blocker} is a file, expected a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DsplError(f"{path}: cannot create the {what}: {exc.strerror}") from None
    try:  # a real write: permissions, read-only file systems and quotas all show here
        with tempfile.NamedTemporaryFile(dir=path, prefix=f".{_token()}.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise DsplError(f"{path}: the {what} is not writable: {exc.strerror}") from None
    return path


@contextmanager
def exclusive_lock(path: str | Path, holder: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the block; a DsplError if another process
    holds it, naming ``holder``, what that process is doing. The kernel releases it when a process dies; a run
    that ends removes the file (still holding the lock, so a process that opened it meanwhile finds it gone and
    retries on a new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise DsplError(f"{path.parent}: {holder} is running into this folder already; wait for it to "
                                "finish, then run again") from None
            try:
                if not path.exists() or os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                    continue  # the file was removed by the run that held it before: lock the new one
                try:
                    yield
                finally:
                    path.unlink(missing_ok=True)
                return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
