"""The top regions of a map (dspl.explain.regions): time-frequency cells with their share of the attribution."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import example_config

from dspl.explain import plot_axes, top_regions


def test_top_regions_report_time_frequency_cells_with_their_share():
    axes = plot_axes(example_config().spec, 16000)
    attribution = np.zeros((64, 64), np.float32)
    attribution[56:64, 0:8] = 3.0  # bottom-left cell: the lowest band of the first 1/8 of the chunk
    attribution[0:8, 56:64] = 1.0
    first, second, third = top_regions(attribution, axes, 3)
    assert (first.share, second.share, third.share) == (0.75, 0.25, 0.0)
    assert (first.start, first.end) == pytest.approx((axes.seconds(0), axes.seconds(8)))
    assert (first.low, first.high) == pytest.approx((axes.hertz(64), axes.hertz(56)))
    assert second.high == pytest.approx(axes.hertz(0)) and second.end == pytest.approx(axes.seconds(64))
    assert top_regions(np.zeros((64, 64)), axes) == []
