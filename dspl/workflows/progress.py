"""The progress shown on long commands (one look for all): on the terminal's error stream, gone when done."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text


def progress_bar() -> Progress:
    """A transient bar with a description, the count done of the total and the time remaining."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True, console=Console(stderr=True))


@contextmanager
def step_status(title: str) -> Iterator[Callable[[str], None]]:
    """A transient status line (a spinner, ``title: <step>``) for work made of a few long steps: yields the
    callback that shows each step as it starts. Off where the error stream is not a terminal, or where dspl's log
    already prints the steps (-v)."""
    console = Console(stderr=True)
    if not console.is_terminal or logging.getLogger("dspl").isEnabledFor(logging.INFO):
        yield lambda _step: None
        return
    with console.status(Text(title)) as status:
        yield lambda step: status.update(Text(f"{title}: {step}"))
