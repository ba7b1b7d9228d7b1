"""The one exception type for user errors: the CLI prints its message as one line and exits non-zero."""


class DsplError(Exception):
    """A user error (bad input file, config or argument) with a message that names what is wrong."""


class Interrupted(DsplError):
    """The user stopped a command (Ctrl-C): the message says what was kept and how to go on."""
