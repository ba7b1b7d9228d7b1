"""dspl: train light-weight audio classifiers on spectrogram plots with PyTorch, ship them as TFLite."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dspl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from dspl.errors import DsplError

__all__ = ["DsplError", "__version__"]
