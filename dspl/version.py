"""The installed dspl version, for file headers and metadata (a module of its own, so anything can import it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dspl")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
