"""`dspl plot` as a library function: write the plot image of every chunk of audio files, plus a contact sheet.

The images are exactly what the model gets before its backbone normalisation (PlotTransform's output).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from dspl.data.audio import find_audio_files, load_audio, stream_audio
from dspl.data.chunking import split_into_chunks, stream_chunks
from dspl.errors import DsplError
from dspl.features import PlotTransform
from dspl.files import atomic_open, prepare_output_dir, save_array, save_figure
from dspl.spec import PreprocessingSpec
from dspl.workflows.progress import progress_bar

logger = logging.getLogger(__name__)

FORMATS = ("png", "npy")
CONTACT_SHEET = "contact_sheet.png"


@dataclass
class PlotSummary:
    """What plot_audio wrote: counts, the contact sheet, and the files it skipped (with the reason)."""

    files: int = 0
    images: int = 0
    contact_sheet: Path | None = None
    skipped: list[str] = field(default_factory=list)


def to_array(image: torch.Tensor) -> np.ndarray:
    """One output ``[C, H, W]`` of PlotTransform as a float32 ``H×W×C`` array (plots on the 0..255 scale)."""
    return image.permute(1, 2, 0).cpu().numpy().astype(np.float32)


def to_png_pixels(array: np.ndarray) -> np.ndarray:
    """uint8 pixels for a PNG: plots rounded from 0..255 (H×W×3); raw features min-max scaled to grey (H×W)."""
    if array.shape[-1] == 3:
        return np.clip(np.rint(array), 0, 255).astype(np.uint8)
    grey = array[..., 0]
    span = float(grey.max() - grey.min())
    scaled = (grey - grey.min()) / span if span > 0 else np.zeros_like(grey)
    return np.rint(scaled * 255.0).astype(np.uint8)


def _write(array: np.ndarray, path: Path, fmt: str) -> None:
    """One plot as a `.npy` array or a PNG, atomically."""
    if fmt == "npy":
        save_array(path, array)
        return
    from PIL import Image

    with atomic_open(path) as file:
        Image.fromarray(to_png_pixels(array)).save(file, format="PNG")  # H×W×3 uint8 -> RGB, H×W -> L


def write_contact_sheet(images: list[tuple[str, np.ndarray]], path: Path, columns: int = 4) -> Path:
    """A grid of titled images (PNG via matplotlib) so a person sees at a glance what the model sees."""
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(3.0 * columns, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axis, (title, array) in zip(axes, images):
        pixels = to_png_pixels(array)
        axis.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, aspect="auto", interpolation="nearest")
        axis.set_title(title, fontsize=8)
    for axis in axes:
        axis.set_axis_off()
    return save_figure(figure, path, dpi=100)


def input_root(source: Path, files: list[Path]) -> Path:
    """The folder that input files are named relative to: ``source`` if it is a directory, else the folder that
    every one of ``files`` (one file, or a glob's matches) lies in."""
    return source if source.is_dir() else Path(os.path.commonpath([path.parent for path in files]))


def output_names(files: list[Path], root: Path) -> dict[Path, Path]:
    """Each input file's output name relative to the output directory, without the ``_<chunk>`` ending.

    A file keeps its folder under ``root`` and is named by its stem (DeepSpectrumLite's ``<stem>_<chunk>.png``),
    unless another file in that folder has the same stem, letter case aside (``a.wav`` and ``a.flac``): those keep
    their whole name (``a.wav_0.png``, ``a.flac_0.png``), so that no output of a run overwrites another, on a
    case-insensitive file system either. Inputs whose names still meet (``a.wav`` beside ``a.wav.flac``) are
    refused with a DsplError naming two of them, before anything is written.
    """
    stems = {path: path.relative_to(root).with_suffix("") for path in files}
    shared = Counter(stem.as_posix().casefold() for stem in stems.values())
    names = {path: stem.with_name(path.name) if shared[stem.as_posix().casefold()] > 1 else stem
             for path, stem in stems.items()}
    owners: dict[str, Path] = {}
    for path, name in names.items():
        other = owners.setdefault(name.as_posix().casefold(), path)
        if other != path:
            raise DsplError(f"{other} and {path}: their outputs would have the same names "
                            f"({name.as_posix()}_<chunk>) and overwrite each other; rename one of them")
    return names


def _file_chunks(spec: PreprocessingSpec, path: Path) -> Iterator[torch.Tensor]:
    """A file's chunks in pieces, decoded block by block (memory does not grow with its length); whole-file
    configurations take the file at once."""
    if spec.whole_file:
        yield split_into_chunks(load_audio(path, spec.sample_rate), spec, source=str(path))
        return
    yield from stream_chunks(stream_audio(path, spec.sample_rate), spec, source=str(path))


def _plot_file(transform: PlotTransform, path: Path, prefix: Path, fmt: str, batch_size: int,
               device: str | torch.device, keep: int) -> tuple[int, list[np.ndarray]]:
    """Write every chunk of one file as ``<prefix>_<chunk>.<fmt>``; returns how many it wrote and the arrays of
    the first ``keep``."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    count, kept = 0, []
    batches = (batch for chunks in _file_chunks(transform.spec, path) for batch in chunks.split(batch_size))
    for batch in batches:
        for image in transform(batch.to(device)):
            array = to_array(image)
            _write(array, Path(f"{prefix}_{count}.{fmt}"), fmt)
            if count < keep:
                kept.append(array)
            count += 1
    return count, kept


def plot_audio(spec: PreprocessingSpec, source: str | Path, output: str | Path, fmt: str = "png",
               sheet_size: int = 16, batch_size: int = 64, device: str | torch.device = "cpu") -> PlotSummary:
    """Write ``<stem>_<chunk>.<fmt>`` for every chunk of every audio file under ``source`` and a contact sheet.

    Files under a directory keep their relative sub-directory in ``output``; files of one folder that share a
    stem keep their whole name instead (``a.wav_0.png``, see `output_names`). PNG: uint8 RGB plots (raw
    features: 8-bit grey, min-max scaled); NPY: float32 H×W×3 on 0..255 (raw features: frames×features×1).
    The contact sheet shows the first ``sheet_size`` chunks, chunk 0 of every file before chunk 1 of any.
    A file that cannot be read or plotted is skipped with a warning and listed in the summary, unless
    ``source`` is that single file.
    """
    if fmt not in FORMATS:
        raise DsplError(f"--format: value {fmt!r} is not one of {', '.join(FORMATS)}")
    source, output = Path(source), Path(output)
    files = find_audio_files(source)
    names = output_names(files, input_root(source, files))
    transform = PlotTransform(spec).to(device).eval()
    prepare_output_dir(output, "output directory (-o)")
    summary = PlotSummary()
    sheet: list[tuple[tuple[int, int], str, np.ndarray]] = []
    with progress_bar() as progress, torch.inference_mode():
        task = progress.add_task("plotting", total=len(files))
        for file_index, path in enumerate(files):
            progress.update(task, description=f"plotting {path.name}")
            try:
                count, kept = _plot_file(transform, path, output / names[path], fmt, batch_size, device, sheet_size)
            except DsplError as exc:
                if source.is_file():
                    raise
                logger.warning("skipped %s", exc)
                summary.skipped.append(str(exc))
                progress.advance(task)
                continue
            name = names[path].as_posix()
            sheet.extend(((chunk, file_index), f"{name} · chunk {chunk}", array) for chunk, array in enumerate(kept))
            sheet = sorted(sheet, key=lambda item: item[0])[:sheet_size]
            summary.files += 1
            summary.images += count
            progress.advance(task)
    if summary.files == 0:
        raise DsplError(f"{source}: none of its {len(files)} audio file(s) could be plotted: {summary.skipped[0]}")
    summary.contact_sheet = write_contact_sheet([(title, array) for _, title, array in sheet], output / CONTACT_SHEET)
    return summary
