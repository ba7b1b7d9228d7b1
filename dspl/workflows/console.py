"""The console dspl's commands print their results on (rich, without torch: a command that only prints loads
nothing heavy for it)."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Columns of what is written to a log rather than a terminal (rich would take 80): a table's cells and the progress
# bar's metrics stay whole on their lines.
LOG_WIDTH = 120


def log_width() -> int | None:
    """LOG_WIDTH where standard output is not a terminal and COLUMNS does not say otherwise; None: rich's own."""
    return LOG_WIDTH if not sys.stdout.isatty() and "COLUMNS" not in os.environ else None


def make_console(quiet: bool = False) -> Console:
    """The console of a command's results: a line is never wrapped (a path stays whole, to copy or to grep in a
    log) and no markup is read from the text (a path may hold brackets: `[red]` or `[/x]` in a folder name is text,
    not a style)."""
    return Console(soft_wrap=True, markup=False, quiet=quiet, width=log_width())
