"""Training curves from a run's TensorBoard logs: loss and the main metric (UAR or CCC) per epoch, as a PNG."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from dspl.files import save_figure
from dspl.tensorboard import without_tensorflow

# tag -> label in the figure; the first panel holds losses, the second the main metric
LOSS_TAGS = {"train/loss_epoch": "train loss", "val/loss": "devel loss"}
METRIC_TAGS = {"val/uar": "devel UAR", "val/accuracy": "devel accuracy", "val/ccc": "devel CCC",
               "val/mae": "devel MAE"}


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``log_dir`` as (epoch, value) pairs; empty when there are none.

    Lightning logs a step number with each value and an ``epoch`` scalar at the same steps; a value's epoch
    is the ``epoch`` value logged at its step (or the last one before it). Only regular files are read.
    """
    files = _event_files(log_dir)
    if not files:
        return {}
    without_tensorflow()  # reading needs no TensorFlow either (seconds and a GB saved)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # file by file, in the order TensorBoard reads a folder: given the folder, it would also open a FIFO there
    # and wait for a writer forever
    events: dict[str, list[Any]] = defaultdict(list)
    for path in files:
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            events[tag].extend(accumulator.Scalars(tag))
    epochs = sorted((e.step, int(e.value)) for e in events.pop("epoch", []))

    def epoch_at(step: int) -> int:
        earlier = [epoch for s, epoch in epochs if s <= step]
        return earlier[-1] if earlier else step

    return {tag: [(epoch_at(e.step), float(e.value)) for e in points] for tag, points in events.items()}


def damaged_event_files(log_dir: Path) -> list[str]:
    """A line for each event file in ``log_dir`` whose records stop at damage (a failed checksum, a record cut
    short): TensorBoard's reader keeps the records before it and skips the rest without a word, so the curves
    would silently lack them."""
    files = _event_files(log_dir)
    if not files:
        return []
    without_tensorflow()
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    problems = []
    for path in files:
        reader, records = PyRecordReader_New(str(path)), 0
        try:
            while True:
                reader.GetNext()
                records += 1
        except errors.OutOfRangeError:  # the end of an intact file
            pass
        except errors.DataLossError as exc:
            detail = exc.message.replace(str(path), "").strip()
            problems.append(f"{path}: record {records + 1} is damaged ({detail}); the curves lack it and what follows")
        finally:
            reader.file_handle.close()
    return problems


def _event_files(log_dir: Path) -> list[Path]:
    """The event files of a run's log dir in TensorBoard's reading order; only regular files."""
    if not log_dir.is_dir():
        return []
    return sorted(path for path in log_dir.glob("events.out.tfevents.*") if path.is_file())


def plot_curves(scalars: dict[str, list[tuple[int, float]]], path: Path) -> Path | None:
    """Loss and metric per epoch (1-based) in two panels; None when the logs hold no epoch curve."""
    panels = [{LOSS_TAGS[t]: scalars[t] for t in LOSS_TAGS if t in scalars},
              {METRIC_TAGS[t]: scalars[t] for t in METRIC_TAGS if t in scalars}]
    panels = [p for p in panels if p]
    if not panels:
        return None
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(4.5 * len(panels), 3.0), layout="constrained")
    for axis, curves in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        for label, points in curves.items():
            axis.plot([e + 1 for e, _ in points], [v for _, v in points], marker="o", markersize=3, label=label)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    return save_figure(figure, path, dpi=90)
