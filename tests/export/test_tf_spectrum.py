"""Power spectra as matrix products: the factorisation chosen, and the numbers against numpy's FFT in float64."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from dspl.errors import DsplError
from dspl.export.tf_spectrum import PowerSpectrum, periodic_hann, two_stage_factors


@pytest.mark.parametrize("length, factors", [
    (2048, (64, 32)), (400, (20, 20)), (2205, (49, 45)), (1323, (49, 27)), (12, (4, 3)), (401, None), (2, None),
])
def test_two_stage_factors_split_near_the_square_root(length, factors):
    assert two_stage_factors(length) == factors


@pytest.mark.parametrize("frame_length, fft_length, two_stage", [
    (2048, 2048, True),   # DeepSpectrumLite's configs/hp_config.json
    (400, 512, True),     # a 25 ms window zero-padded to a power of two
    (512, 400, True),     # cut to the FFT length after the window
    (1323, 1323, True),   # 30 ms at 44.1 kHz: 49 x 27
    (401, 401, False),    # prime: one DFT matrix
    (12, 12, False),      # 4 x 3 costs more multiply-adds than the 12 x 14 matrix
])
def test_power_spectrum_matches_the_fft_of_the_windowed_frame(frame_length, fft_length, two_stage):
    spectrum = PowerSpectrum(frame_length, fft_length)
    assert (spectrum.factors is not None) == two_stage
    frames = np.random.default_rng(frame_length).standard_normal((2, 3, frame_length)).astype(np.float32)
    frames[1] *= 1e-4  # a quiet item: errors are relative to each frame's own peak
    expected = np.abs(np.fft.rfft(frames * periodic_hann(frame_length), n=fft_length, axis=-1)) ** 2
    power = spectrum(tf.constant(frames)).numpy()
    assert power.shape == (2, 3, fft_length // 2 + 1)
    amplitude_error = np.abs(np.sqrt(power) - np.sqrt(expected)) / np.sqrt(expected).max(axis=-1, keepdims=True)
    assert amplitude_error.max() < 2e-6


def test_power_spectrum_takes_any_number_of_frames():
    """Whole-file preprocessors trace with an unknown frame count."""
    spectrum = PowerSpectrum(64, 64)
    function = tf.function(spectrum, input_signature=[tf.TensorSpec([None, None, 64], tf.float32)])
    frames = np.random.default_rng(0).standard_normal((1, 7, 64)).astype(np.float32)
    expected = np.abs(np.fft.rfft(frames * periodic_hann(64), axis=-1)) ** 2
    np.testing.assert_allclose(function(tf.constant(frames)).numpy(), expected, rtol=0, atol=2e-6 * expected.max())


@pytest.mark.parametrize("fft_length", [16001, 2 * 16001])  # a prime, and twice it (two stages of 16001 x 16001)
def test_an_fft_length_with_a_large_factor_is_refused_before_its_matrix_is_built(fft_length):
    with pytest.raises(DsplError) as error:
        PowerSpectrum(fft_length, fft_length)
    assert str(error.value).startswith(f"stft_fft_length: an FFT of {fft_length} samples needs ")
    assert str(error.value).endswith(f"choose a length with small factors, e.g. {1 << fft_length.bit_length()} "
                                     "samples")


def test_the_largest_power_of_two_fft_the_config_allows_is_built():
    assert PowerSpectrum(2**17, 2**17).factors == (512, 256)
