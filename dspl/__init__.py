"""dspl: train light-weight audio classifiers on spectrogram plots with PyTorch, ship them as TFLite.

Importing dspl applies its CPU thread policy (dspl.threads) before torch starts, if torch has not started yet (a
thread variable that holds no count leaves it unapplied: the CLI reports it, and so does dspl.threads when asked), and
silences TensorFlow's native start-up chatter (dspl.quiet) unless TF_CPP_MIN_LOG_LEVEL is set or TensorFlow is
imported already.
"""

from __future__ import annotations

from typing import Any

from dspl import quiet, threads
from dspl.errors import DsplError
from dspl.version import __version__

try:
    threads.configure()
except DsplError:  # a thread variable set to no count: the CLI says so in one line, a script when it asks for threads
    pass
quiet.quiet_library()

__all__ = ["DsplError", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """`dspl.load_model` without importing torch for `import dspl` (the CLI's --help stays fast)."""
    if name == "load_model":
        from dspl.loading import load_model

        return load_model
    raise AttributeError(f"module 'dspl' has no attribute {name!r}")
