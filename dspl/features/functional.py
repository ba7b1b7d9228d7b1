"""Stateless batched spectrogram operations with tf.signal semantics (the README, "How a chunk becomes a plot").

Every function works on batches ``[B, ...]`` on any device. The constant matrices (mel weights, the MFCC
DCT) are built in float64 so that they equal TensorFlow's formulas up to float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from dspl.spec import LOG_MEL_OFFSET, PEAK_LEVEL, POWER_FLOOR, hertz_to_mel, lifter_weights


def peak_normalize(audio: torch.Tensor, peak: float = PEAK_LEVEL) -> torch.Tensor:
    """Scale each row of ``[B, N]`` so its largest |sample| is ``peak``; an all-zero row stays zero."""
    largest = audio.abs().amax(dim=-1, keepdim=True)
    gain = torch.where(largest > 0, peak / largest.clamp_min(torch.finfo(audio.dtype).tiny), torch.zeros_like(largest))
    return audio * gain


def hann_window(length: int) -> torch.Tensor:
    """tf.signal.hann_window(L, periodic=True), float64: 0.5 - 0.5·cos(2πn/D), D = L (L even) or L - 1 (L odd)."""
    if length == 1:
        return torch.ones(1, dtype=torch.float64)
    denominator = length if length % 2 == 0 else length - 1
    n = torch.arange(length, dtype=torch.float64)
    return 0.5 - 0.5 * torch.cos(2.0 * math.pi * n / denominator)


def stft_power(audio: torch.Tensor, window: torch.Tensor, frame_step: int, fft_length: int) -> torch.Tensor:
    """|STFT|² ``[B, frames, fft_length // 2 + 1]`` of ``[B, N]`` as tf.signal.stft frames it (no padding)."""
    frames = audio.unfold(-1, window.shape[0], frame_step) * window
    spectrum = torch.fft.rfft(frames, n=fft_length)
    return spectrum.real.square() + spectrum.imag.square()


def mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: float,
                      lower_edge_hertz: float, upper_edge_hertz: float) -> torch.Tensor:
    """``[bins, mels]`` float64 weights of tf.signal.linear_to_mel_weight_matrix (HTK triangles, DC bin zero)."""
    linear_hz = np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins)[1:]
    bins_mel = hertz_to_mel(linear_hz)[:, None]
    edges = np.linspace(hertz_to_mel(lower_edge_hertz), hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return torch.from_numpy(np.pad(weights, ((1, 0), (0, 0))))


def _per_sample_max(values: torch.Tensor) -> torch.Tensor:
    """The largest value of each sample of ``[B, ...]``, shaped to broadcast against it."""
    return values.flatten(1).amax(dim=1).view(-1, *([1] * (values.dim() - 1)))


def power_to_db(power: torch.Tensor, top_db: float | None = None) -> torch.Tensor:
    """Absolute dB against a reference power of 1: 10·log10(max(POWER_FLOOR, S)), as DeepSpectrumLite computed it.

    ``top_db`` (dspl's addition) floors each sample at its own peak minus top_db, so digital silence (zero
    padding) and the recording's noise floor map to one colour instead of stretching the plot's range.
    """
    # torchaudio's amplitude_to_DB floors relative to the batch's peak, not each sample's, hence computed here.
    db = 10.0 * torch.log10(power.clamp_min(POWER_FLOOR))
    return db if top_db is None else torch.maximum(db, _per_sample_max(db) - top_db)


def mel_to_db(mel: torch.Tensor) -> torch.Tensor:
    """Log-mel input of the MFCCs with db_scale: 20·log10(max(POWER_FLOOR, M) / max M) per sample (0 dB at its peak).

    DeepSpectrumLite converted the mel *power* as if it were an amplitude, hence the factor 20.
    """
    db = 20.0 * torch.log10(mel.clamp_min(POWER_FLOOR))
    return db - 20.0 * torch.log10(_per_sample_max(mel).clamp_min(POWER_FLOOR))


def log_mel(mel: torch.Tensor) -> torch.Tensor:
    """Log-mel input of the MFCCs without db_scale: ln(M + LOG_MEL_OFFSET)."""
    return torch.log(mel + LOG_MEL_OFFSET)


def mfcc_matrix(num_mel_bins: int, num_mfccs: int, cep_lifter: int = 0) -> torch.Tensor:
    """``[mels, num_mfccs]`` float64 matrix: log-mel @ it = the first liftered tf.signal MFCCs."""
    # TF's MFCCs: the unnormalised DCT-II 2·Σ x_n cos(πk(2n+1)/2M), times 1/sqrt(2M).
    n = np.arange(num_mel_bins, dtype=np.float64)[:, None]
    k = np.arange(num_mfccs, dtype=np.float64)[None, :]
    dct = 2.0 * np.cos(math.pi * k * (2.0 * n + 1.0) / (2.0 * num_mel_bins)) / math.sqrt(2.0 * num_mel_bins)
    return torch.from_numpy(dct * lifter_weights(num_mfccs, cep_lifter)[None, :])


def minmax_scale(features: torch.Tensor) -> torch.Tensor:
    """Scale each sample of ``[B, ...]`` to [0, 1] by its own min and max; a constant sample becomes 0."""
    flat = features.flatten(1)
    shape = (-1, *([1] * (features.dim() - 1)))
    low = flat.amin(dim=1).view(shape)
    span = flat.amax(dim=1).view(shape) - low
    scaled = (features - low) / span.clamp_min(torch.finfo(features.dtype).tiny)
    return torch.where(span > 0, scaled, torch.zeros_like(features))


def apply_colormap(values: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Colour ``[B, ...]`` in [0, 1] with a ``[T, 3]`` table, linearly between entries -> ``[B, 3, ...]``."""
    # position v·(T-1) lies between entries i and i + 1: table[i] + (position - i)·(table[i + 1] - table[i])
    last = table.shape[0] - 1
    position = values.clamp(0.0, 1.0) * last
    index = position.floor().clamp_(max=last - 1)
    fraction = (position - index).flatten()
    flat_index = index.long().flatten()
    channels = table.T  # [3, T]
    steps = channels[:, 1:] - channels[:, :-1]
    colours = torch.addcmul(channels.index_select(1, flat_index), steps.index_select(1, flat_index), fraction)
    return colours.view(3, *values.shape).movedim(0, 1)
