"""Quiet by default: TensorFlow's native start-up chatter and Lightning's info lines only with -v / -vv.

TensorFlow's C++ runtime writes its plugin-registration errors and placement warnings straight to file
descriptor 2 while it is imported, before Python's logging can filter anything (about 66 lines from one
export on a CPU machine), so that import runs with descriptor 2 pointed at /dev/null and TF_CPP_MIN_LOG_LEVEL
keeps its later C++ logging to errors; TFLite conversions, which log through absl, run silenced too (their
errors come back as exceptions). QUIET_ENV carries the choice into spawned children (the conversions).
`import dspl` makes the same choice for scripts and notebooks (quiet_library), unless the user chose TensorFlow's log
level; the CLI's -vv takes it back (loud_tensorflow).
Lightning sets its loggers to INFO and gives the `lightning` logger a handler of its own when it is imported, so
every line came twice (its handler and the root's) whatever -v said: once it is imported, its loggers get dspl's
level and keep to their own handler, which drops Lightning's product tips ("💡 Tip: … try installing litlogger")
at every verbosity: they say nothing about the run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Iterator

QUIET_ENV = "DSPL_QUIET"
_log_level_set = False  # whether quiet_tensorflow chose TF_CPP_MIN_LOG_LEVEL (loud_tensorflow takes it back)
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (what Python writes to sys.stderr is unaffected)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


class _ImportHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs the first import of one top-level package inside ``around()``, then ``after()``; then steps aside
    (only once the package is executed: availability checks with importlib.util.find_spec come first)."""

    def __init__(self, name: str, around: Callable[[], ContextManager[None]] = nullcontext,
                 after: Callable[[], None] = lambda: None) -> None:
        self.name, self.around, self.after = name, around, after

    def find_spec(self, name, path, target=None):  # noqa: ANN001 (importlib's protocol)
        if name != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):  # noqa: ANN001
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        with self.around():
            self._loader.exec_module(module)
        self.after()


@contextmanager
def _tensorflow_import_silenced() -> Iterator[None]:
    """The TensorFlow import, and its first look for GPUs (cuInit's complaint), with descriptor 2 silenced."""
    with native_stderr_silenced():
        yield
        sys.modules["tensorflow"].config.list_physical_devices("GPU")


def native_quiet() -> ContextManager[None]:
    """Descriptor 2 silenced when dspl runs quietly (for TFLite conversions, whose errors come back as
    exceptions anyway), else nothing."""
    return native_stderr_silenced() if os.environ.get(QUIET_ENV) == "1" else nullcontext()


def on_import(name: str, around: Callable[[], ContextManager[None]] = nullcontext,
               after: Callable[[], None] = lambda: None) -> None:
    """Hook the first import of ``name`` (run it inside ``around()``, then ``after()``); if it is imported already,
    only run ``after``."""
    if name in sys.modules:
        after()
    elif not any(isinstance(f, _ImportHook) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportHook(name, around, after))


def quiet_tensorflow() -> None:
    """Silence TensorFlow's native start-up output in this process and in the processes it spawns."""
    global _log_level_set
    os.environ[QUIET_ENV] = "1"
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"], _log_level_set = "2", True
    on_import("tensorflow", around=_tensorflow_import_silenced)


def loud_tensorflow() -> None:
    """Undo quiet_tensorflow where TensorFlow has not been imported yet (-vv after `import dspl` chose quiet)."""
    global _log_level_set
    os.environ.pop(QUIET_ENV, None)
    if _log_level_set:
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        _log_level_set = False
    sys.meta_path[:] = [f for f in sys.meta_path if not (isinstance(f, _ImportHook) and f.name == "tensorflow")]


def quiet_library() -> None:
    """`import dspl`'s default: TensorFlow's native start-up chatter silenced as the CLI's, unless the user chose
    TensorFlow's log level (TF_CPP_MIN_LOG_LEVEL) or imported TensorFlow already."""
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ and "tensorflow" not in sys.modules:
        quiet_tensorflow()


def quiet_child() -> None:
    """In a spawned child: stay as quiet as the parent chose to be."""
    if os.environ.get(QUIET_ENV) == "1":
        quiet_tensorflow()


class _NoProductTips(logging.Filter):
    """Drops Lightning's advertisements for its cloud products from its log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("💡 Tip:")


def set_verbosity(verbosity: int) -> None:
    """Logging for -v (info) and -vv (debug, and TensorFlow's native output); warnings otherwise."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("dspl").setLevel(level)

    def align_lightning() -> None:
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(level)
        logging.getLogger("lightning").propagate = False  # it has a handler of its own
        for handler in logging.getLogger("lightning").handlers:
            if not any(isinstance(f, _NoProductTips) for f in handler.filters):
                handler.addFilter(_NoProductTips())

    on_import("lightning", after=align_lightning)
    if verbosity < 2:
        quiet_tensorflow()
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # its deprecation notices name its own files
    else:
        loud_tensorflow()
