"""The one exception type for user errors: the CLI prints its message as one line and exits non-zero; and the
interruptions a user (Ctrl-C) or a scheduler (SIGTERM) makes."""

from __future__ import annotations

import signal


class DsplError(Exception):
    """A user error (bad input file, config or argument) with a message that names what is wrong."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler's time limit or pre-emption) raised in the main thread as an interruption, so
    that what a command keeps and says on Ctrl-C holds for it too."""


def interruption(exc: KeyboardInterrupt) -> tuple[str, int]:
    """How an interruption is named in messages, and the exit status shells report for it (128 + the signal)."""
    if isinstance(exc, Terminated):
        return "SIGTERM", 128 + signal.SIGTERM
    return "Ctrl-C", 128 + signal.SIGINT


class Interrupted(DsplError):
    """The user (or a scheduler) stopped a command: the message says what was kept and how to go on; ``status`` is
    the exit status of the interruption (see `interruption`)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
