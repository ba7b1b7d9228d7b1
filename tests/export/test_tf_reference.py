"""Parity of the spectrogram plots: torch (dspl.features) vs the TF reference vs its TFLite-compatible twin.

Tolerances are the README's ("How a chunk becomes a plot"): on the 0..255 scale |diff| <= 0.5 for >= 99.9 % of
pixels and <= 2.0 for all; raw features within 1e-3 dB. The grid covers every option value, each combined with
varied others.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import RATES, assert_features_close, assert_images_close, make_signals, parity_config, torch_output

from dspl.errors import DsplError
from dspl.export.tf_reference import TFPlotPipeline
from dspl.spec import PreprocessingSpec

MAPS = ("viridis", "cividis", "inferno", "magma", "plasma")
METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "gaussian", "mitchellcubic")
SIZES = ((32, 48), (24, 16), (64, 40), (20, 80))  # (height, width): up- and down-sampling, never square


def _resize_cases() -> list:
    """Every resize_method x anti_alias, with colour maps, sample rates and image sizes rotating."""
    cases = []
    for i, (method, antialias) in enumerate((m, a) for m in METHODS for a in (False, True)):
        height, width = SIZES[i % len(SIZES)]
        rate = tuple(RATES)[i % 3]
        overrides = dict(resize_method=method, anti_alias=antialias, color_map=MAPS[i % len(MAPS)],
                         sample_rate=rate, image_height=height, image_width=width, normalize_audio=i % 2 == 0)
        cases.append(pytest.param(overrides, id=f"{method}-{'aa' if antialias else 'noaa'}-{rate}-{height}x{width}"))
    return cases


PLOT_CASES = _resize_cases() + [
    pytest.param(dict(color_map=name, resize_method="bicubic", anti_alias=False), id=f"cmap-{name}") for name in MAPS
] + [
    pytest.param(dict(mel_scale=False), id="linear-db"),
    pytest.param(dict(mel_scale=False, sample_rate=8000, image_height=64, image_width=24), id="linear-db-8k"),
    pytest.param(dict(mel_scale=False, db_scale=False, resize_method="area"), id="linear-power"),
    pytest.param(dict(db_scale=False, color_map="magma"), id="mel-power"),
    pytest.param(dict(db_scale=False, sample_rate=44100, num_mel_bins=64, resize_method="lanczos3"),
                 id="mel-power-44k"),
    pytest.param(dict(num_mfccs=13, cep_lifter=22), id="mfcc-lifter22"),
    pytest.param(dict(num_mfccs=20, cep_lifter=0, color_map="inferno", resize_method="nearest"), id="mfcc-nolifter"),
    pytest.param(dict(num_mfccs=13, cep_lifter=12, db_scale=False, sample_rate=8000, anti_alias=False),
                 id="mfcc-lifter12-8k"),
    pytest.param(dict(top_db=40.0), id="mel-db-top40"),
    pytest.param(dict(mel_scale=False, top_db=80.0, sample_rate=8000), id="linear-db-top80-8k"),
    pytest.param(dict(stft_fft_length=0.064), id="fft-longer-than-window"),
    pytest.param(dict(stft_window_size=0.04, stft_hop_size=0.02, stft_fft_length=0.05, sample_rate=44100,
                      lower_edge_hertz=60.0, upper_edge_hertz=16000.0, num_mel_bins=64), id="fft-longer-44k-edges"),
    pytest.param(dict(normalize_audio=False, color_map="plasma"), id="no-normalize"),
    pytest.param(dict(normalize_audio=False, mel_scale=False, sample_rate=44100), id="no-normalize-linear-44k"),
    pytest.param(dict(stft_window_size=0.03, stft_hop_size=0.01, stft_fft_length=0.03, sample_rate=44100),
                 id="odd-window-44k"),
]
RAW_CASES = [
    pytest.param(dict(use_plot_images=False), id="raw-mel-db"),
    pytest.param(dict(use_plot_images=False, mel_scale=False, sample_rate=8000), id="raw-linear-db-8k"),
    pytest.param(dict(use_plot_images=False, sample_rate=8000, num_mel_bins=128), id="raw-mel-128-8k"),
    pytest.param(dict(use_plot_images=False, stft_window_size=0.03, stft_fft_length=0.03, sample_rate=44100),
                 id="raw-odd-window-44k"),
    pytest.param(dict(use_plot_images=False, db_scale=False, normalize_audio=False), id="raw-mel-power"),
    pytest.param(dict(use_plot_images=False, stft_window_size=0.02, stft_hop_size=0.02, stft_fft_length=0.02),
                 id="raw-no-overlap"),
    pytest.param(dict(use_plot_images=False, stft_hop_size=0.005), id="raw-five-blocks-per-frame"),
    pytest.param(dict(use_plot_images=False, top_db=30.0), id="raw-mel-db-top30"),
    pytest.param(dict(use_plot_images=False, num_mfccs=13, cep_lifter=22, sample_rate=44100), id="raw-mfcc-lifter"),
    pytest.param(dict(use_plot_images=False, num_mfccs=13, cep_lifter=0, stft_fft_length=0.064), id="raw-mfcc"),
]


def run_tf(spec: PreprocessingSpec, audio: np.ndarray, tflite_compatible: bool = False) -> np.ndarray:
    """TFPlotPipeline output as numpy: [B, H, W, 3] or [B, frames, features, 1]."""
    return TFPlotPipeline(spec, tflite_compatible=tflite_compatible)(audio).numpy()


@pytest.mark.parametrize("overrides", PLOT_CASES)
def test_plots_torch_vs_tf_reference(overrides):
    hp = parity_config(**overrides).spec
    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    reference = run_tf(hp, audio)
    assert reference.shape == (3, hp.image_height, hp.image_width, 3)
    assert np.isfinite(reference).all() and reference.min() >= 0.0 and reference.max() <= 255.0
    assert_images_close(torch_output(hp, audio), reference)


@pytest.mark.parametrize("overrides", PLOT_CASES)
def test_plots_tf_reference_vs_tflite_mode(overrides):
    hp = parity_config(**overrides).spec
    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    reference, builtin_only = run_tf(hp, audio), run_tf(hp, audio, tflite_compatible=True)
    assert_images_close(builtin_only, reference)


@pytest.mark.parametrize("overrides", RAW_CASES)
def test_raw_features_torch_vs_tf(overrides):
    hp = parity_config(**overrides).spec
    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    reference = run_tf(hp, audio)
    frames = 1 + (audio.shape[1] - hp.frame_length) // hp.frame_step
    assert reference.shape[:2] == (3, frames) and reference.shape[3] == 1
    assert_features_close(hp, torch_output(hp, audio), reference)
    assert_features_close(hp, run_tf(hp, audio, tflite_compatible=True), reference)


def test_whole_file_config_takes_any_length():
    hp = parity_config(chunk_size=0.0, resize_method="gaussian").spec
    audio = make_signals(16000, 5321)
    reference = run_tf(hp, audio)
    assert reference.shape == (3, 32, 48, 3)
    assert_images_close(torch_output(hp, audio), reference)
    with pytest.raises(DsplError, match="resize_method: value 'gaussian' .* needs a fixed number of samples"):
        TFPlotPipeline(hp, tflite_compatible=True)
    fixed = TFPlotPipeline(hp, tflite_compatible=True, num_samples=5321)(audio).numpy()
    assert_images_close(fixed, reference)


@pytest.mark.parametrize("method, antialias", [("nearest", False), ("nearest", True), ("bilinear", False)])
def test_whole_file_tflite_mode_takes_any_length_with_builtin_resize_kernels(method, antialias):
    hp = parity_config(chunk_size=0.0, resize_method=method, anti_alias=antialias, image_height=40, image_width=56).spec
    pipeline = TFPlotPipeline(hp, tflite_compatible=True)
    for length in (3217, 9001):
        audio = make_signals(16000, length)
        assert_images_close(pipeline(audio).numpy(), run_tf(hp, audio))


@pytest.mark.parametrize("tflite_compatible", [False, True], ids=["reference", "tflite-mode"])
def test_degenerate_signals_give_finite_plots(tflite_compatible):
    hp = parity_config(num_mfccs=0).spec
    n = hp.chunk_samples
    click = np.zeros(n, np.float32)
    click[7] = 1.0
    audio = np.stack([np.zeros(n, np.float32), np.full(n, 0.25, np.float32), click])
    for config in (hp, parity_config(num_mfccs=13, cep_lifter=22).spec,
                   parity_config(db_scale=False, mel_scale=False).spec):
        out = run_tf(config, audio, tflite_compatible)
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 255.0


def test_low_tone_at_bottom_high_tone_at_top():
    hp = parity_config(color_map="viridis", image_height=40, image_width=20).spec
    t = np.arange(4000) / 16000
    audio = np.stack([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 6000 * t)]).astype(np.float32)
    brightness = run_tf(hp, audio).sum(axis=(2, 3))  # [B, H]: viridis gets brighter with the value
    low_row, high_row = brightness.argmax(axis=1)
    assert low_row > 30 and high_row < 15


@pytest.mark.parametrize("method", ["nearest", "bilinear", "bicubic", "lanczos3"])
def test_tflite_mode_writes_plots_normalised_for_a_backbone(method, normalisation):
    hp = parity_config(resize_method=method, image_height=40, image_width=56).spec
    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    plain = TFPlotPipeline(hp, tflite_compatible=True)(audio).numpy()
    normalised = TFPlotPipeline(hp, tflite_compatible=True, normalisation=normalisation)(audio).numpy()
    np.testing.assert_allclose(normalised, plain * normalisation.scale + normalisation.shift, atol=1e-4)
    if method in ("bicubic", "lanczos3"):  # negative weights overshoot the colour range: the clip still holds
        assert np.isclose(normalised, normalisation.shift, atol=1e-6).any()


def test_only_tflite_plots_are_normalised(normalisation):
    with pytest.raises(ValueError, match="TFLite mode only"):
        TFPlotPipeline(parity_config().spec, normalisation=normalisation)
    with pytest.raises(ValueError, match="TFLite mode only"):
        TFPlotPipeline(parity_config(use_plot_images=False).spec, tflite_compatible=True, normalisation=normalisation)
