"""What dspl adds to a Lightning training: the epoch checkpoint it resumes from, its progress bar, and the
Lightning warnings that do not apply to it silenced."""

from __future__ import annotations

import signal
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import lightning as L
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dspl.errors import Terminated
from dspl.files import atomic_path
from dspl.workflows.console import log_width

# Lightning's advice that does not apply: dspl's loader only hands out cached waveforms on purpose, the module (not
# the data module) makes the plots after the batch transfer, and an empty devel partition is dspl's own warning.
QUIET_WARNINGS = (r".*does not have many workers.*", r".*smaller than the logging interval.*",
                  r".*Total length of `DataLoader` across ranks is zero.*",
                  r".*overridden `on_after_batch_transfer` in `LightningModule`.*",
                  r".*LightningCLI's args parameter is intended to run from within Python.*",
                  r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence the Lightning warnings in QUIET_WARNINGS (and only those)."""
    with warnings.catch_warnings():
        for pattern in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        yield


@contextmanager
def interrupts_raised() -> Iterator[None]:
    """Ctrl-C or SIGTERM during a Lightning fit or test as the KeyboardInterrupt (dspl.errors.Terminated for
    SIGTERM) that stopped it, so that the caller can say what was kept.

    Lightning answers an interruption by ignoring SIGINT from then on and exiting with status 1 (sys.exit while it
    handles the KeyboardInterrupt), and a SIGTERM no handler raised on by SIGTERMException, a SystemExit of status
    0; here both become the interruption again and the SIGINT handler is restored.
    """
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SIGTERMException:  # Lightning's own SIGTERM handling, where no handler of dspl's raised first
        raise Terminated from None
    except SystemExit as exc:
        if not isinstance(exc.__context__, KeyboardInterrupt):
            raise
        raise type(exc.__context__) from None
    finally:
        if threading.current_thread() is threading.main_thread() and handler is not None:
            signal.signal(signal.SIGINT, handler)


class EpochCheckpoint(Callback):
    """Writes the full training state to one file after every training epoch, atomically, for resuming."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with atomic_path(self.path) as temporary:
            trainer.save_checkpoint(temporary, weights_only=False)


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, counting epochs 1..max_epochs as the resume message and the report's
    training curves do (Lightning's own bar shows "Epoch 0/1" .. "Epoch 1/1" for two epochs).

    ``_get_train_description`` is Lightning's own (private) hook for that text; tests/workflows/test_train.py runs a
    real fit with this bar, so a Lightning release that renames it fails there rather than showing the old count.
    Written to a log (not a terminal) the bar gets LOG_WIDTH columns, so that its metrics stay on its line.
    """

    def __init__(self, console_kwargs: dict[str, Any] | None = None) -> None:
        if console_kwargs is None and log_width() is not None:
            console_kwargs = {"width": log_width()}
        super().__init__(console_kwargs=console_kwargs)

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch + 1}/{self.trainer.max_epochs}"
        # as wide as the validation bar's description, so the bars do not jump when they alternate
        return f"{description:{len(self.validation_description)}}"

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float]:
        """The running loss and the devel metrics, short enough for one line: no logger version ("v_num"), no
        epoch averages of the step values, "train/loss_step" as "loss"."""
        metrics = super().get_metrics(trainer, pl_module)
        return {name.removeprefix("train/").removesuffix("_step").replace("/", " "): value
                for name, value in metrics.items() if name != "v_num" and not name.endswith("_epoch")}
