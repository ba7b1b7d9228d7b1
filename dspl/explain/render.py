"""PNG pictures of attribution maps: the plot in grey with the map over it, axes in seconds and hertz.

The plot is shown desaturated so that the map's colours (matplotlib's ``inferno``, more opaque where the
attribution is larger) stand out from the plot's own colour map. Frequency ticks sit at round hertz values
placed through the plot's own frequency scale (mel or linear), so the rows need not be evenly spaced in Hz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dspl.explain.geometry import PlotAxes, hertz_ticks, nice_ticks
from dspl.files import save_figure

MAP_COLORS = "inferno"
MAX_ALPHA = 0.75
PANELS_PER_ROW = 6


@dataclass
class Panel:
    """What one picture of a chunk shows: plot pixels ``[H, W, 3]`` uint8 (or ``[H, W]`` grey), its map
    ``[H, W]``, its axes and a title."""

    pixels: np.ndarray
    attribution: np.ndarray
    axes: PlotAxes
    title: str


def _grey(pixels: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601) of RGB pixels, or the grey pixels as they are, on 0..1."""
    if pixels.ndim == 2:
        return pixels.astype(np.float32) / 255.0
    return (pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0


def _overlay(attribution: np.ndarray, scale: float) -> np.ndarray:
    """RGBA of a map: inferno colours, alpha growing with the value (0 where there is no attribution)."""
    from matplotlib import colormaps

    level = np.clip(attribution / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(attribution)
    rgba = colormaps[MAP_COLORS](level)
    rgba[..., 3] = MAX_ALPHA * np.sqrt(level)
    return rgba


def _hertz_label(value: float) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def draw_panel(axis, panel: Panel, scale: float, frequency_labels: bool = True) -> object:
    """Draw one panel on a matplotlib axis; returns the overlay image (for a colour bar)."""
    axes = panel.axes
    left, right = float(axes.seconds(0.0)), float(axes.seconds(float(axes.width)))
    extent = (left, right, axes.height, 0)
    axis.imshow(_grey(panel.pixels), cmap="gray", vmin=0.0, vmax=1.0, extent=extent, aspect="auto",
                interpolation="nearest")
    image = axis.imshow(_overlay(panel.attribution, scale), extent=extent, aspect="auto", interpolation="nearest")
    axis.set_xticks(nice_ticks(left, right, 4))
    axis.set_xlim(left, right)
    axis.set_xlabel("time (s)", fontsize=8)
    ticks = hertz_ticks(axes) if axes.has_hertz else nice_ticks(0, axes.features, 4)
    axis.set_yticks(axes.row(ticks))
    axis.set_yticklabels([_hertz_label(t) for t in ticks] if axes.has_hertz else [f"{t:g}" for t in ticks]
                         if frequency_labels else [])
    if frequency_labels:
        axis.set_ylabel(axes.frequency_label, fontsize=8)
    axis.tick_params(labelsize=7)
    axis.set_title(panel.title, fontsize=8)
    return image


def _colorbar(figure, axis, scale: float) -> None:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = figure.colorbar(ScalarMappable(Normalize(0.0, scale), colormaps[MAP_COLORS]), ax=axis, fraction=0.05)
    bar.set_label("attribution", fontsize=7)
    bar.ax.tick_params(labelsize=6)


def write_panel(panel: Panel, path: Path, dpi: int = 100) -> Path:
    """One chunk: the plot with its map, titled, with a colour bar; saved as a PNG."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 3.2), layout="constrained")
    axis = figure.subplots()
    scale = float(panel.attribution.max())
    draw_panel(axis, panel, scale)
    _colorbar(figure, axis, scale)
    return save_figure(figure, path, dpi=dpi)


def write_summary(panels: list[Panel], title: str, path: Path, dpi: int = 80) -> Path:
    """A whole recording: its chunks side by side along time (each with its own seconds), one colour scale
    for all so that chunks compare; wraps after PANELS_PER_ROW chunks."""
    from matplotlib.figure import Figure

    columns = min(len(panels), PANELS_PER_ROW)
    rows = -(-len(panels) // columns)
    figure = Figure(figsize=(1.2 + 2.2 * columns, 0.6 + 2.4 * rows), layout="constrained")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False, sharey=True))
    scale = max(float(p.attribution.max()) for p in panels)
    for index, axis in enumerate(grid.ravel()):
        if index >= len(panels):
            axis.set_axis_off()
            continue
        draw_panel(axis, panels[index], scale, frequency_labels=index % columns == 0)
    _colorbar(figure, grid.ravel().tolist(), scale)
    figure.suptitle(title, fontsize=9)
    return save_figure(figure, path, dpi=dpi)
