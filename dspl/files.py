"""Atomic file writes: a temporary file beside the destination, renamed onto it only when complete."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside destination; rename it onto destination when the block succeeds.

    Readers never see a half-written file, and a failed write leaves no temporary file behind.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(destination: str | Path, data: bytes) -> Path:
    """Write bytes to destination atomically."""
    with atomic_path(destination) as temporary, open(temporary, "xb") as file:
        file.write(data)
    return Path(destination)
