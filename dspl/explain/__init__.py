"""Attribution maps of what a model looked at: methods (Captum), plot axes in seconds and hertz, regions, PNGs.

The workflow that writes them for audio files is ``dspl.workflows.explain``. ``attribute`` loads torch when first
used, so that the command line lists the methods without it.
"""

from __future__ import annotations

from typing import Any

from dspl.explain.geometry import PlotAxes, plot_axes
from dspl.explain.methods import METHODS
from dspl.explain.regions import Region, band_share, top_regions

__all__ = ["METHODS", "PlotAxes", "Region", "attribute", "band_share", "plot_axes", "top_regions"]


def __getattr__(name: str) -> Any:
    if name == "attribute":
        from dspl.explain.attribution import attribute

        return attribute
    raise AttributeError(f"module 'dspl.explain' has no attribute {name!r}")
