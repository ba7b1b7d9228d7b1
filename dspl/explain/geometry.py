"""Where a plot pixel lies in time (seconds) and frequency (hertz): the axes of attribution maps.

The sizes come from the preprocessing spec (``dspl.spec.PreprocessingSpec``: frame length and step, FFT
length, number of features, image size), so the axes follow whatever the plots are made of. Both resizes
(frames to ``image_width`` columns, features to ``image_height`` rows) are ``tf.image.resize``-style: pixel
edge ``x`` of ``W`` lies at source coordinate ``x * n / W`` of ``n`` source cells. Frame ``k`` is centred at
``k * frame_step + frame_length / 2`` samples; feature ``i`` is centred on its mel band's centre (HTK mel,
``lower_edge_hertz``..``upper_edge_hertz`` in ``num_mel_bins + 2`` equal mel steps, as
``tf.signal.linear_to_mel_weight_matrix``) or on FFT bin ``i`` (``i * sample_rate / fft_length``).
Row 0 is the top of the image: the lowest frequency is in the bottom row. MFCC features have no hertz
axis; their axis counts coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dspl.spec import PreprocessingSpec, hertz_to_mel, mel_to_hertz


@dataclass(frozen=True)
class PlotAxes:
    """The time and frequency axes of one plot (or feature matrix turned into plot orientation).

    ``width``/``height``: pixels; ``frames``/``features``: the matrix the plot was resized from;
    ``start``: the chunk's start time in the file (seconds).
    """

    width: int
    height: int
    frames: int
    features: int
    start: float
    frame_step_s: float
    frame_length_s: float
    frequency_kind: str  # "mel", "linear" or "mfcc"
    bin_hertz: float  # FFT bin spacing (linear plots: feature i is centred on i * bin_hertz)
    mel_range: tuple[float, float]  # (mel of the lowest band's lower edge, mel step between band centres)

    @property
    def has_hertz(self) -> bool:
        """Whether the vertical axis is a frequency (not MFCC coefficients)."""
        return self.frequency_kind != "mfcc"

    def seconds(self, column: np.ndarray | float) -> np.ndarray:
        """Time in the file (seconds) of a column coordinate (0 = left edge, width = right edge)."""
        frame = np.asarray(column, dtype=np.float64) * self.frames / self.width
        return self.start + (frame - 0.5) * self.frame_step_s + self.frame_length_s / 2.0

    def column(self, seconds: np.ndarray | float) -> np.ndarray:
        """Column coordinate of a time in the file (the inverse of ``seconds``)."""
        frame = (np.asarray(seconds, dtype=np.float64) - self.start - self.frame_length_s / 2.0) / self.frame_step_s
        return (frame + 0.5) * self.width / self.frames

    def feature(self, row: np.ndarray | float) -> np.ndarray:
        """Feature coordinate (0 = lower edge of feature 0) of a row coordinate (0 = top edge)."""
        return (self.height - np.asarray(row, dtype=np.float64)) * self.features / self.height

    def hertz(self, row: np.ndarray | float) -> np.ndarray:
        """Frequency (Hz) of a row coordinate; MFCC plots give the coefficient coordinate instead."""
        feature = self.feature(row)
        if self.frequency_kind == "linear":
            return np.maximum(0.0, (feature - 0.5) * self.bin_hertz)
        if self.frequency_kind == "mel":
            lowest, step = self.mel_range
            return mel_to_hertz(lowest + (feature + 0.5) * step)
        return feature

    def row(self, hertz: np.ndarray | float) -> np.ndarray:
        """Row coordinate of a frequency (the inverse of ``hertz``)."""
        hertz = np.asarray(hertz, dtype=np.float64)
        if self.frequency_kind == "linear":
            feature = hertz / self.bin_hertz + 0.5
        elif self.frequency_kind == "mel":
            lowest, step = self.mel_range
            feature = (hertz_to_mel(hertz) - lowest) / step - 0.5
        else:
            feature = hertz
        return self.height - feature * self.height / self.features

    @property
    def frequency_label(self) -> str:
        return {"mel": "frequency (Hz, mel scale)", "linear": "frequency (Hz)"}.get(self.frequency_kind,
                                                                                   "MFCC coefficient")


def plot_axes(spec: PreprocessingSpec, num_samples: int, start: float = 0.0) -> PlotAxes:
    """The axes of the plot made of a chunk of ``num_samples`` samples that starts ``start`` s into its file."""
    rate = float(spec.sample_rate)
    frames = max(spec.num_frames(num_samples), 1)
    if spec.use_plot_images:
        width, height = spec.image_width, spec.image_height
    else:  # raw features are shown in plot orientation, one pixel per frame and feature
        width, height = frames, spec.num_features
    kind = "mfcc" if spec.num_mfccs > 0 else ("mel" if spec.mel_scale else "linear")
    mel_low = float(hertz_to_mel(spec.lower_edge_hertz))
    mel_step = (float(hertz_to_mel(spec.upper_edge_hertz)) - mel_low) / (spec.num_mel_bins + 1)
    return PlotAxes(width=width, height=height, frames=frames, features=spec.num_features, start=start,
                    frame_step_s=spec.frame_step / rate, frame_length_s=spec.frame_length / rate,
                    frequency_kind=kind, bin_hertz=rate / spec.fft_length, mel_range=(mel_low, mel_step))


def nice_ticks(low: float, high: float, count: int = 6) -> np.ndarray:
    """Round values (1, 2, 2.5 or 5 times a power of ten) spanning [low, high], about ``count`` of them."""
    span = max(high - low, 1e-9)
    raw = span / max(count, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = power * min((m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw), default=10.0)
    first = np.ceil(low / step) * step
    return np.arange(first, high + step * 1e-6, step)


def hertz_ticks(axes: PlotAxes, count: int = 6) -> np.ndarray:
    """Frequency ticks for the vertical axis: round hertz values (1, 2 or 5 times a power of ten on the mel
    scale), at least ``height / (count + 1)`` rows apart, so they spread evenly on the plot's own scale."""
    top, bottom = float(axes.hertz(0.0)), float(axes.hertz(float(axes.height)))
    if axes.frequency_kind != "mel":
        return nice_ticks(bottom, top, count)
    candidates = [m * 10.0 ** e for e in range(1, 6) for m in (1.0, 2.0, 5.0)]
    gap = axes.height / (count + 1)
    chosen: list[float] = []
    for value in sorted((v for v in candidates if bottom <= v <= top), reverse=True):
        if not chosen or float(axes.row(value)) - float(axes.row(chosen[-1])) >= gap:
            chosen.append(value)
    return np.array(sorted(chosen))
