"""Crash-safe output files: atomic writes, several outputs committed as one unit, and the clean-up of killed runs.

A `kill -9` at any moment must lose nothing that existed before. A single file is written to a temporary
name beside its destination and renamed onto it (`atomic_path`). Several outputs that belong together (a
model file and its checkpoint, every artefact of an export) are staged completely first; then a journal
listing the renames is written atomically, the renames run, and the journal is removed (`commit`). A run
killed while renaming leaves the journal behind, and the next run that writes into that folder finishes
the renames (`recover`) before anything else, so the folder never keeps a mix of old and new outputs.

Temporary names carry the writing process's id, so the next run removes only what dead processes left.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

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


def temporary_path(destination: str | Path) -> Path:
    """A fresh name `.<name>.<pid>-<hex>.tmp` beside destination (its folder is created)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    return destination.with_name(f".{destination.name}.{_token()}.tmp")


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside destination; rename it onto destination when the block succeeds.

    Readers never see a half-written file, and a failed write leaves no temporary file behind.
    """
    temporary = temporary_path(destination)
    try:
        yield temporary
        os.replace(temporary, Path(destination))
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(destination: str | Path, data: bytes) -> Path:
    """Write bytes to destination atomically."""
    with atomic_path(destination) as temporary, open(temporary, "xb") as file:
        file.write(data)
    return Path(destination)


def remove(path: Path) -> None:
    """Remove a file or a folder tree; nothing if it is gone."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
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
    pairs = [(Path(staged), Path(destination)) for staged, destination in moves.items()]
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
