"""The time-frequency regions that hold most of a map's attribution, in seconds and hertz.

A map is cut into a grid of equal cells (``TIME_CELLS`` along time, ``FREQUENCY_CELLS`` along the frequency
axis of the plot); each cell's share is its part of the map's total. The cells with the largest shares are
the regions, reported with their time span (seconds in the file) and frequency span (hertz; MFCC plots:
coefficient coordinates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dspl.explain.geometry import PlotAxes

TIME_CELLS = 8
FREQUENCY_CELLS = 8


@dataclass(frozen=True)
class Region:
    """One cell of the grid: its time span (s), frequency span (Hz) and share of the map's attribution."""

    start: float
    end: float
    low: float
    high: float
    share: float


def band_share(attribution: np.ndarray, axes: PlotAxes, low_hz: float, high_hz: float) -> float:
    """Share of a map ``[H, W]``'s total that lies in rows between ``low_hz`` and ``high_hz`` (fractional rows
    count by their covered part); 0 for an all-zero map."""
    total = float(attribution.sum())
    if total <= 0:
        return 0.0
    top, bottom = float(axes.row(high_hz)), float(axes.row(low_hz))
    edges = np.arange(axes.height + 1, dtype=np.float64)
    covered = np.clip(np.minimum(edges[1:], bottom) - np.maximum(edges[:-1], top), 0.0, 1.0)
    return float((attribution.sum(axis=1) * covered).sum() / total)


def top_regions(attribution: np.ndarray, axes: PlotAxes, count: int = 3) -> list[Region]:
    """The ``count`` grid cells with the largest shares of a map ``[H, W]`` (empty for an all-zero map)."""
    total = float(attribution.sum())
    if total <= 0:
        return []
    rows = np.linspace(0, axes.height, FREQUENCY_CELLS + 1).round().astype(int)
    cols = np.linspace(0, axes.width, TIME_CELLS + 1).round().astype(int)
    cells = []
    for r0, r1 in zip(rows[:-1], rows[1:]):
        for c0, c1 in zip(cols[:-1], cols[1:]):
            share = float(attribution[r0:r1, c0:c1].sum()) / total
            cells.append(Region(float(axes.seconds(c0)), float(axes.seconds(c1)), float(axes.hertz(r1)),
                                float(axes.hertz(r0)), share))
    return sorted(cells, key=lambda region: -region.share)[:count]
