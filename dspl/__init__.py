"""dspl: train light-weight audio classifiers on spectrogram plots with PyTorch, ship them as TFLite."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("dspl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from dspl.errors import DsplError

__all__ = ["DsplError", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """`dspl.load_model` without importing torch for `import dspl` (the CLI's --help stays fast)."""
    if name == "load_model":
        from dspl.predictor import load_model

        return load_model
    raise AttributeError(f"module 'dspl' has no attribute {name!r}")
