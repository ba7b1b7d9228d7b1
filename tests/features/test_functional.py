"""dspl.features.functional: the tf.signal constants and the stateless batched operations, the colour tables."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch

from dspl.features import functional as F
from dspl.spec import COLOR_MAPS, colour_table, num_frames

tf = importlib.import_module("tensorflow")


@pytest.mark.parametrize("mels, bins, rate, low, high", [
    (128, 1025, 16000, 0.0, 8000.0), (40, 257, 8000, 125.0, 3800.0), (64, 2049, 44100, 20.0, 22050.0),
])
def test_mel_matrix_equals_tf(mels: int, bins: int, rate: int, low: float, high: float) -> None:
    expected = tf.signal.linear_to_mel_weight_matrix(mels, bins, rate, low, high, dtype=tf.float64).numpy()
    got = F.mel_weight_matrix(mels, bins, rate, low, high).numpy()
    assert got.shape == (bins, mels)
    assert np.abs(got - expected).max() <= 1e-6
    assert np.all(got[0] == 0.0)  # DC bin
    float32 = tf.signal.linear_to_mel_weight_matrix(mels, bins, rate, low, high).numpy()
    assert np.abs(got.astype(np.float32) - float32).max() <= 1e-4


def test_mfcc_matrix_equals_tf_mfccs_and_lifter() -> None:
    rng = np.random.default_rng(0)
    log_mel = rng.normal(size=(3, 11, 40)).astype(np.float64)
    expected = tf.signal.mfccs_from_log_mel_spectrograms(log_mel).numpy()[..., :13]
    got = (torch.from_numpy(log_mel) @ F.mfcc_matrix(40, 13)).numpy()
    assert np.abs(got - expected).max() <= 1e-9
    liftered = (torch.from_numpy(log_mel) @ F.mfcc_matrix(40, 13, cep_lifter=22)).numpy()
    n = np.arange(13)
    assert np.allclose(liftered, expected * (1 + 11 * np.sin(np.pi * n / 22)))


@pytest.mark.parametrize("frame_length, frame_step, fft_length", [(64, 16, 64), (50, 20, 128), (25, 10, 32)])
def test_stft_power_equals_tf_signal_stft(frame_length: int, frame_step: int, fft_length: int) -> None:
    audio = np.random.default_rng(1).normal(size=(2, 403)).astype(np.float32)
    stft = tf.signal.stft(audio, frame_length, frame_step, fft_length,
                          window_fn=tf.signal.hann_window, pad_end=False).numpy()
    window = F.hann_window(frame_length).float()
    assert np.allclose(window.numpy(), tf.signal.hann_window(frame_length, periodic=True).numpy(), atol=1e-6)
    got = F.stft_power(torch.from_numpy(audio), window, frame_step, fft_length).numpy()
    expected = np.abs(stft) ** 2
    assert got.shape == expected.shape == (2, num_frames(403, frame_length, frame_step), fft_length // 2 + 1)
    assert np.abs(got - expected).max() <= 1e-4 * expected.max()


def test_peak_normalize_guards_silence() -> None:
    audio = torch.tensor([[0.1, -0.5, 0.25], [0.0, 0.0, 0.0]])
    out = F.peak_normalize(audio)
    assert out[0].abs().max().item() == pytest.approx(0.7079)
    assert torch.equal(out[1], torch.zeros(3))


def test_power_to_db_is_absolute() -> None:
    """10·log10(max(1e-16, S)) against a reference power of 1, as DeepSpectrumLite computed it."""
    power = torch.tensor([[[1.0, 0.1]], [[100.0, 1.0]], [[0.0, 1e-20]]])
    db = F.power_to_db(power)
    assert torch.allclose(db, torch.tensor([[[0.0, -10.0]], [[20.0, 0.0]], [[-160.0, -160.0]]]))


def test_top_db_floors_db_below_each_sample_peak() -> None:
    power = torch.tensor([[[1.0, 1e-3, 1e-9, 0.0]], [[10.0, 1.0, 1e-12, 0.0]]])
    db = F.power_to_db(power, top_db=80.0)
    assert torch.allclose(db, torch.tensor([[[0.0, -30.0, -80.0, -80.0]], [[10.0, 0.0, -70.0, -70.0]]]))


def test_mel_to_db_is_an_amplitude_db_relative_to_each_sample_peak() -> None:
    """MFCC input with db_scale: 20·log10(max(1e-16, M) / max M), each sample against its own peak."""
    mel = torch.tensor([[[4.0, 0.4]], [[1e-3, 1e-5]], [[1.0, 0.0]]])
    db = F.mel_to_db(mel)
    assert torch.allclose(db, torch.tensor([[[0.0, -20.0]], [[0.0, -40.0]], [[0.0, -320.0]]]))


def test_log_mel_offset() -> None:
    assert torch.allclose(F.log_mel(torch.tensor([[[0.0, math.e - 1e-6]]])), torch.tensor([[[math.log(1e-6), 1.0]]]))


def test_minmax_scale_constant_sample_is_zero() -> None:
    x = torch.stack([torch.linspace(-3.0, 5.0, 12).view(3, 4), torch.full((3, 4), 7.0)])
    out = F.minmax_scale(x)
    assert out[0].min().item() == 0.0 and out[0].max().item() == pytest.approx(1.0)
    assert torch.equal(out[1], torch.zeros(3, 4))


@pytest.mark.parametrize("name", COLOR_MAPS)
def test_colormap_endpoints_equal_matplotlib(name: str) -> None:
    import matplotlib

    cmap = matplotlib.colormaps[name]
    table = torch.from_numpy(colour_table(name)).float()
    assert table.shape == (256, 3)
    assert np.allclose(table[0].numpy(), cmap(0.0)[:3], atol=1e-7)
    assert np.allclose(table[-1].numpy(), cmap(1.0)[:3], atol=1e-7)
    rgb = F.apply_colormap(torch.tensor([[0.0, 1.0, 100.5 / 255.0]]), table)[0].T  # [3 values, RGB]
    assert torch.allclose(rgb[0], table[0]) and torch.allclose(rgb[1], table[255])
    assert torch.allclose(rgb[2], (table[100] + table[101]) / 2, atol=1e-6)
