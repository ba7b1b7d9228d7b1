"""Attribution maps of what a model looked at: methods (Captum), plot axes in seconds and hertz, regions, PNGs.

The workflow that writes them for audio files is ``dspl.workflows.explain``.
"""

from dspl.explain.attribution import METHODS, attribute
from dspl.explain.geometry import PlotAxes, plot_axes
from dspl.explain.regions import Region, band_share, top_regions

__all__ = ["METHODS", "PlotAxes", "Region", "attribute", "band_share", "plot_axes", "top_regions"]
