"""The preprocessing spec: every size, constant and choice list of "raw chunk -> plot" defined once.

The README's "How a chunk becomes a plot" in numbers. The torch features, the TensorFlow reference, the schema
checks, the model file's input shape and the TFLite metadata all read them from here; this module imports
neither torch nor TensorFlow nor any dspl module but errors, so any of them can use it. The configuration's
preprocessing part (dspl.config.settings.PreprocessingSettings) builds the spec from the user's seconds and hertz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dspl.errors import DsplError

PEAK_LEVEL = 0.7079
"""Peak amplitude of a chunk after normalize_audio (about -3 dBFS)."""
POWER_FLOOR = 1e-16
"""Floor of the dB conversions: 10·log10(max(POWER_FLOOR, S)) for power, 20·log10(max(POWER_FLOOR, M) / max M)
for the mel spectrogram that feeds MFCCs with db_scale."""
LOG_MEL_OFFSET = 1e-6
"""Offset of the natural-log mel spectrogram that feeds MFCCs without db_scale: ln(M + LOG_MEL_OFFSET)."""
COLOUR_TABLE_SIZE = 256
"""Entries of matplotlib's colour tables; values are interpolated linearly between entries."""
COLOR_MAPS = ("viridis", "cividis", "inferno", "magma", "plasma")
RESIZE_METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "gaussian", "mitchellcubic")
DYNAMIC_RESIZE_METHODS = (("nearest", False), ("nearest", True), ("bilinear", False))
"""(resize_method, anti_alias) pairs whose time-axis resize TFLite has as a built-in kernel for any input length
(anti-aliasing does not apply to nearest)."""

MEL_BREAK_HZ = 700.0
MEL_HIGH_Q = 1127.0


def hertz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """HTK mel scale as tf.signal defines it: 1127·ln(1 + f / 700)."""
    return MEL_HIGH_Q * np.log1p(np.asarray(frequencies, dtype=np.float64) / MEL_BREAK_HZ)


def mel_to_hertz(mels: np.ndarray | float) -> np.ndarray:
    """The inverse of hertz_to_mel: 700·(exp(m / 1127) - 1)."""
    return MEL_BREAK_HZ * np.expm1(np.asarray(mels, dtype=np.float64) / MEL_HIGH_Q)


def num_frames(num_samples: int, frame_length: int, frame_step: int) -> int:
    """Frames of an STFT without padding: 1 + (N - frame_length) // frame_step (0 when N < frame_length)."""
    return 0 if num_samples < frame_length else 1 + (num_samples - frame_length) // frame_step


@dataclass(frozen=True)
class PreprocessingSpec:
    """What turns a raw chunk into a model input, in samples and pixels (see the README).

    ``chunk_samples`` is 0 in whole-file mode (chunk_size <= 0): every file is one chunk of its own length.
    """

    sample_rate: int
    normalize_audio: bool
    chunk_samples: int
    hop_samples: int
    frame_length: int
    frame_step: int
    fft_length: int
    mel_scale: bool
    num_mel_bins: int
    lower_edge_hertz: float
    upper_edge_hertz: float
    num_mfccs: int
    cep_lifter: int
    db_scale: bool
    top_db: float | None
    use_plot_images: bool
    color_map: str
    image_height: int
    image_width: int
    resize_method: str
    anti_alias: bool

    @property
    def whole_file(self) -> bool:
        """Whether every file is one chunk of its own length (chunk_size <= 0)."""
        return self.chunk_samples == 0

    @property
    def num_bins(self) -> int:
        """Bins of the one-sided spectrum of one frame."""
        return self.fft_length // 2 + 1

    @property
    def num_features(self) -> int:
        """Features per frame: MFCCs, mel bins, or spectrum bins."""
        if self.num_mfccs > 0:
            return self.num_mfccs
        return self.num_mel_bins if self.mel_scale else self.num_bins

    def num_frames(self, num_samples: int | None = None) -> int:
        """STFT frames of a chunk of ``num_samples`` samples (default: the configured chunk length)."""
        return num_frames(self.chunk_samples if num_samples is None else num_samples, self.frame_length,
                          self.frame_step)

    @property
    def input_channels(self) -> int:
        """Channels of the model input: 3 for plots, 1 for raw features."""
        return 3 if self.use_plot_images else 1

    def input_shape(self, num_samples: int | None = None) -> tuple[int, int, int]:
        """Model input ``(C, H, W)`` (PyTorch layout): the plot, or ``(1, frames, features)`` raw features."""
        if self.use_plot_images:
            return (self.input_channels, self.image_height, self.image_width)
        return (self.input_channels, self.num_frames(num_samples), self.num_features)

    def dynamic_length_resize(self) -> bool:
        """Whether a TFLite preprocessor can take any input length (the time resize is a built-in kernel)."""
        return not self.use_plot_images or (self.resize_method, self.anti_alias) in DYNAMIC_RESIZE_METHODS

    def seconds(self, num_samples: int) -> float:
        """Duration of ``num_samples`` samples."""
        return num_samples / self.sample_rate

    def input_samples(self, whole_file_seconds: float | None = None) -> int:
        """Samples of one model input: the chunk length, or for whole files ``whole_file_seconds`` (0: any length)."""
        if not self.whole_file:
            if whole_file_seconds is not None:
                raise DsplError(f"whole-file seconds: value {whole_file_seconds:g} applies only to whole-file "
                                "configurations (chunk_size <= 0); this one cuts chunks of "
                                f"{self.seconds(self.chunk_samples):g} s")
            return self.chunk_samples
        if whole_file_seconds is None:
            return 0
        samples = round(whole_file_seconds * self.sample_rate)
        if samples < self.frame_length:
            raise DsplError(f"whole-file seconds: value {whole_file_seconds:g} gives {samples} samples, fewer than "
                            f"one STFT window ({self.frame_length} samples)")
        return samples


def lifter_weights(num_mfccs: int, cep_lifter: int) -> np.ndarray:
    """Cepstral lifter 1 + (L/2)·sin(π·n/L) for n = 0..num_mfccs-1, float64 (all ones when L = 0)."""
    if cep_lifter <= 0:
        return np.ones(num_mfccs)
    n = np.arange(num_mfccs, dtype=np.float64)
    return 1.0 + (cep_lifter / 2.0) * np.sin(math.pi * n / cep_lifter)


def colour_table(name: str) -> np.ndarray:
    """The ``[COLOUR_TABLE_SIZE, 3]`` float64 RGB table (0..1) of a matplotlib colour map, read from matplotlib."""
    if name not in COLOR_MAPS:
        raise DsplError(f"color_map: value '{name}' is not one of {', '.join(COLOR_MAPS)}")
    import matplotlib

    cmap = matplotlib.colormaps[name]
    if cmap.N != COLOUR_TABLE_SIZE:
        cmap = cmap.resampled(COLOUR_TABLE_SIZE)
    return np.asarray(cmap(np.arange(COLOUR_TABLE_SIZE)), dtype=np.float64)[:, :3]
