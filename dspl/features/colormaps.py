"""Matplotlib's perceptually uniform colour maps as 256-entry RGB tables for tensor colour mapping."""

from __future__ import annotations

import numpy as np
import torch

COLOR_MAPS = ("viridis", "cividis", "inferno", "magma", "plasma")
TABLE_SIZE = 256


def colormap_table(name: str) -> torch.Tensor:
    """The ``[256, 3]`` float32 RGB table (0..1) of a matplotlib colour map, read from matplotlib itself."""
    if name not in COLOR_MAPS:
        raise ValueError(f"colour map {name!r} is not one of {', '.join(COLOR_MAPS)}")
    import matplotlib

    cmap = matplotlib.colormaps[name]
    if cmap.N != TABLE_SIZE:
        cmap = cmap.resampled(TABLE_SIZE)
    rgba = np.asarray(cmap(np.arange(TABLE_SIZE)), dtype=np.float64)
    return torch.from_numpy(rgba[:, :3]).float()
