"""The plot axes of an explanation (dspl.explain.geometry): seconds and hertz of every row and column."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import example_config

from dspl.explain import plot_axes
from dspl.explain.geometry import hertz_ticks
from dspl.spec import hertz_to_mel


def test_axes_in_seconds_follow_frames_and_chunk_start():
    """1 s chunks at 16 kHz, 512-sample frames every 256 samples: 61 frames over 64 columns; the left edge is
    half a hop before the first frame's centre (16 ms), the right edge half a hop after the last one's."""
    axes = plot_axes(example_config().spec, 16000, start=2.5)
    assert (axes.width, axes.frames) == (64, 61)
    assert axes.seconds(0) == pytest.approx(2.5 + 0.016 - 0.008)
    assert axes.seconds(64) == pytest.approx(2.5 + 60 * 0.016 + 0.016 + 0.008)
    assert axes.column(axes.seconds(17.25)) == pytest.approx(17.25)


def test_mel_axis_puts_the_lowest_frequency_in_the_bottom_row():
    """HTK mel from 0 to 8000 Hz in 64 bands: the bottom edge is below the first band's centre, the top above
    the last one's, and equal mel steps are equal numbers of rows."""
    axes = plot_axes(example_config().spec, 16000)
    mel_step = hertz_to_mel(8000.0) / 65
    assert axes.hertz(64.0) == pytest.approx(float(np.expm1(0.5 * mel_step / 1127.0) * 700.0))
    assert axes.hertz(0.0) == pytest.approx(float(np.expm1(64.5 * mel_step / 1127.0) * 700.0))
    assert axes.hertz(0.0) > 7800 > 7600 > axes.hertz(1.0) > 7400  # the top row: 7.5 to 7.8 kHz
    rows = axes.row(np.array([500.0, 1000.0, 2000.0]))
    assert np.all(np.diff(rows) < 0)
    assert axes.row(axes.hertz(12.5)) == pytest.approx(12.5)
    ticks = hertz_ticks(axes)
    assert set(ticks) >= {1000.0, 2000.0, 5000.0}
    assert np.all(np.diff(axes.row(ticks)) <= -64 / 7)  # round values, evenly apart on the plot


def test_linear_axis_is_bin_frequencies():
    """Linear plots: 257 FFT bins of 31.25 Hz; the top row's upper edge is half a bin above Nyquist."""
    axes = plot_axes(example_config(mel_scale=False, image_height=257).spec, 16000)
    assert axes.features == 257
    assert axes.hertz(257.0 - 10.5) == pytest.approx(10 * 31.25)
    assert axes.hertz(0.0) == pytest.approx(8000.0 + 15.625)


def test_raw_features_keep_one_pixel_per_frame_and_feature():
    axes = plot_axes(example_config(use_plot_images=False).spec, 16000)
    assert (axes.width, axes.height) == (61, 64)
