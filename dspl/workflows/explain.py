"""`explain`: attribution maps of every chunk of audio files, as PNGs in seconds and hertz, NPY maps and a CSV.

Works for every model dspl loads (dspl's ``model.h5`` and Lightning checkpoints) with all three methods, plots
and raw-feature models alike. A model whose gradients PyTorch does not have (a DeepSpectrumLite Keras ``.h5``,
run by TensorFlow) is explained by occlusion; the gradient methods need it ported first (``dspl import-keras``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dspl.config import GivenConfigs
from dspl.data.audio import find_audio_files, load_audio
from dspl.data.chunking import chunk_times, split_into_chunks
from dspl.errors import DsplError
from dspl.explain.attribution import attribute
from dspl.explain.geometry import PlotAxes, plot_axes
from dspl.explain.methods import GRADIENT_METHODS, METHODS
from dspl.explain.regions import top_regions
from dspl.explain.render import Panel, write_panel, write_summary
from dspl.files import prepare_output_dir, save_array
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models.predictor import Predictor
from dspl.workflows.plot import input_root, output_names, to_array, to_png_pixels
from dspl.workflows.predict import write_csv
from dspl.workflows.progress import progress_bar

logger = logging.getLogger(__name__)

REGIONS_FILE = "regions.csv"
REGIONS_PER_CHUNK = 3
REGION_COLUMNS = ["filename", "chunk", "target", "prediction", "score", "rank", "start_s", "end_s", "low_hz",
                  "high_hz", "share"]


@dataclass
class ChunkExplanation:
    """One chunk's map ``[H, W]`` and plot pixels in plot orientation (low frequencies in the bottom row),
    its axes, the explained output and the model's decision with that output's score."""

    index: int
    axes: PlotAxes
    pixels: np.ndarray
    attribution: np.ndarray
    target: str
    decision: str | float
    score: float

    def title(self, categorical: bool) -> str:
        span = f"chunk {self.index} · {self.axes.start:.2f} s"
        if not categorical:
            return f"{span}\npredicted {self.target} = {float(self.decision):.3f}"
        explained = "" if self.target == self.decision else f", map for {self.target}"
        return f"{span}\npredicted {self.decision} ({self.score:.2f}){explained}"


@dataclass
class ExplainSummary:
    """What explain wrote: counts, the regions CSV and the per-file summary images."""

    files: int = 0
    chunks: int = 0
    regions: Path | None = None
    summaries: list[Path] = field(default_factory=list)


def _checked_request(predictor: Predictor, method: str, target: str | None) -> int | None:
    """Refuse a method the model cannot be explained by, or a target it does not have; returns the explained
    output's index (None: each chunk's predicted class).

    A model run by another framework (a DeepSpectrumLite Keras model, TensorFlow) gives PyTorch its scores but no
    gradients.
    """
    if method not in METHODS:
        raise DsplError(f"--method: value {method!r}: expected one of {', '.join(METHODS)}")
    if method in GRADIENT_METHODS and not predictor.loaded.gradients:
        raise DsplError(f"--method: value {method!r} needs the model's gradients, which {predictor.loaded.kind} "
                        "does not give: use --method occlusion, or port the model with `dspl import-keras` and "
                        "explain the ported one")
    return _target_index(predictor, target)


def _target_index(predictor: Predictor, target: str | None) -> int | None:
    if target is None:
        return None if predictor.categorical else 0
    if target not in predictor.classes.labels:
        raise DsplError(f"--target: value {target!r} is not a class of the model "
                        f"(known: {', '.join(predictor.classes.labels)})")
    return predictor.classes.labels.index(target)


def _plot_orientation(array: np.ndarray, images: bool) -> np.ndarray:
    """Raw feature matrices ``[frames, features]`` turned like plots: frequency up, time to the right."""
    return array if images else np.ascontiguousarray(array.T[::-1])


def explain_waveform(predictor: Predictor, waveform: torch.Tensor, method: str = "occlusion",
                     target: str | None = None, seed: int = 0, batch_size: int = 16,
                     source: str = "<waveform>") -> list[ChunkExplanation]:
    """Maps of every chunk of a mono waveform at the model's rate, for ``target`` (a class label) or, by
    default, each chunk's predicted class (regression: the single output)."""
    fixed = _checked_request(predictor, method, target)
    spec = predictor.spec
    chunks = split_into_chunks(waveform, spec, source)
    length = chunks.shape[1]
    starts = chunk_times(waveform.shape[0], spec)
    images = spec.use_plot_images
    colormap = predictor.features.colormap if images else None
    labels = predictor.classes.labels
    explained = []
    for first in range(0, chunks.shape[0], batch_size):
        with torch.no_grad():
            plots = predictor.features(chunks[first:first + batch_size].to(predictor.device))
            scores = predictor.model(plots).float().cpu().numpy()
        targets = torch.tensor([int(np.argmax(s)) if fixed is None else fixed for s in scores])
        maps = attribute(predictor.model, plots, targets.to(predictor.device), method, colormap, seed).cpu().numpy()
        for offset, (plot, attribution, row, t) in enumerate(zip(plots, maps, scores, targets.tolist())):
            index = first + offset
            pixels = to_png_pixels(to_array(plot))
            explained.append(ChunkExplanation(
                index=index, axes=plot_axes(spec, length, starts[index]),
                pixels=_plot_orientation(pixels, images), attribution=_plot_orientation(attribution, images),
                target=labels[t], decision=predictor.decide(row), score=float(row[t]),
            ))
    return explained


def _write_file(predictor: Predictor, path: Path, name: str, prefix: Path, method: str, target: str | None,
                seed: int) -> tuple[list[list], Path, int]:
    """Write one file's chunk PNGs/NPYs and summary (``<prefix>_<chunk>.png`` …, ``<prefix>_summary.png``);
    returns its region rows (``name`` in their filename column), the summary path and the number of chunks."""
    waveform = load_audio(path, predictor.spec.sample_rate)
    explained = explain_waveform(predictor, waveform, method, target, seed, source=str(path))
    prefix.parent.mkdir(parents=True, exist_ok=True)
    categorical = predictor.categorical
    rows, panels = [], []
    for chunk in explained:
        panel = Panel(chunk.pixels, chunk.attribution, chunk.axes, chunk.title(categorical))
        panels.append(panel)
        write_panel(panel, Path(f"{prefix}_{chunk.index}.png"))
        save_array(Path(f"{prefix}_{chunk.index}.npy"), chunk.attribution.astype(np.float32))
        decision = chunk.decision if categorical else f"{float(chunk.decision):.6f}"
        for rank, region in enumerate(top_regions(chunk.attribution, chunk.axes, REGIONS_PER_CHUNK), 1):
            rows.append([name, chunk.index, chunk.target, decision, f"{chunk.score:.6f}", rank,
                         f"{region.start:.3f}", f"{region.end:.3f}", f"{region.low:.1f}", f"{region.high:.1f}",
                         f"{region.share:.4f}"])
    summary = write_summary(panels, f"{name} · {method}", Path(f"{prefix}_summary.png"))
    return rows, summary, len(explained)


def explain(model_path: str | Path, audio: str | Path, out_dir: str | Path, method: str = "occlusion",
            target: str | None = None, seed: int = 0, given: GivenConfigs = NO_CONFIGS) -> ExplainSummary:
    """Explain every chunk of every audio file under ``audio`` (a file, directory or glob) with a model.

    Writes, under ``out_dir`` (keeping each file's sub-directory; files of one folder that share a stem keep their
    whole name instead, ``a.wav_0.png``: see `output_names`): ``<stem>_<chunk>.png`` (the plot with
    the map over it, axes in seconds and hertz, the decision in the title), ``<stem>_<chunk>.npy`` (the map
    at plot resolution, float32 ``[H, W]``, lowest frequency in the last row), ``<stem>_summary.png`` (the
    whole recording's chunks side by side) and one ``regions.csv`` (the top regions of every chunk: time
    and frequency span, share of the chunk's attribution). ``given``: the configs of a DeepSpectrumLite Keras
    model (-hc, -cc), which occlusion explains as it is.
    """
    files = find_audio_files(audio)
    root = input_root(Path(audio), files)
    names = output_names(files, root)
    predictor = Predictor(load_model_file(model_path, given))
    _checked_request(predictor, method, target)  # before anything is written
    out_dir = prepare_output_dir(out_dir, "output directory (-o)")
    summary, rows = ExplainSummary(), []
    with progress_bar() as progress:
        task = progress.add_task(f"explain ({method})", total=len(files))
        for path in files:
            file_rows, image, count = _write_file(predictor, path, path.relative_to(root).as_posix(),
                                                  out_dir / names[path], method, target, seed)
            rows.extend(file_rows)
            summary.summaries.append(image)
            summary.files += 1
            summary.chunks += count
            progress.advance(task)
    summary.regions = out_dir / REGIONS_FILE
    write_csv(summary.regions, REGION_COLUMNS, rows)
    logger.info("%s: explained %d chunks of %d files with %s -> %s", model_path, summary.chunks, summary.files,
                method, out_dir)
    return summary
