"""The console dspl's commands print their results on (rich, without torch: a command that only prints loads
nothing heavy for it)."""

from __future__ import annotations

from rich.console import Console


def make_console(quiet: bool = False) -> Console:
    """The console of a command's results: a line is never wrapped (a path stays whole, to copy or to grep in a
    log) and no markup is read from the text (a path may hold brackets: `[red]` or `[/x]` in a folder name is text,
    not a style)."""
    return Console(soft_wrap=True, markup=False, quiet=quiet)
