"""A machine that is not idle, for the benches: another process spinning on CPU 0 while a block runs (what a
second SLURM array task, a browser or a colleague's job does to a 2-core machine)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from typing import ContextManager

SPIN = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"


class Busy:
    """A process spinning on CPU 0 for the block."""

    def __enter__(self) -> "Busy":
        self.process = subprocess.Popen([sys.executable, "-c", SPIN])
        time.sleep(0.5)  # let it take the core
        return self

    def __exit__(self, *_: object) -> None:
        self.process.kill()
        self.process.wait()


def busy_if(busy: bool) -> ContextManager[object]:
    """The block beside a spinning process when ``busy``, else on the machine as it is."""
    return Busy() if busy else contextlib.nullcontext()
