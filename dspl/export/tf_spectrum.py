"""Power spectra of windowed frames as matrix products, the way the TFLite preprocessor computes them.

TFLite's one FFT kernel (RFFT2D) runs outside XNNPACK, on one thread and in double precision: 0.22 ms for 14
frames of 2048 samples on this project's CPU, where the two-stage product below takes 0.13 ms on one thread and 0.12
on two (bench/RESULTS.md). Both ways are linear maps of the frame, so they are written as constant matrices:

- two stages (Cooley–Tukey with one split, N = P·Q, sample n = Q·n2 + n1, bin k = k1 + P·k2):
  ``X[k1 + P·k2] = Σ_n1 W_N^(n1·k1) · W_Q^(n1·k2) · Σ_n2 x[Q·n2 + n1] · W_P^(n2·k1)``, i.e. a length-P DFT of each
  of the Q interleaved sub-sequences, a twiddle factor per element, and a length-Q DFT across them; about
  2·N·(P + Q + 2) multiply-adds per frame;
- one product with the windowed DFT matrix (frame_length x 2·bins), where no factorisation is cheaper (prime
  lengths, tiny ones).

Rounding: float32 sums, so a bin carries an error of ~5e-7 of its frame's peak amplitude (TFLite's RFFT2D
~1e-7); bins that far below the peak are what the parity tolerances of tests/helpers.py allow for.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from dspl.errors import DsplError


def periodic_hann(length: int) -> np.ndarray:
    """tf.signal.hann_window(length, periodic=True) in float64 (TF divides by length - 1 for odd lengths)."""
    return tf.signal.hann_window(length, periodic=True, dtype=tf.float64).numpy()


def dft_matrix(frame_length: int, fft_length: int) -> np.ndarray:
    """[frame_length, 2 * bins] periodic-Hann-windowed real DFT (cos | -sin) of a frame zero-padded to fft_length."""
    n = np.arange(min(frame_length, fft_length))
    k = np.arange(fft_length // 2 + 1)
    window = periodic_hann(frame_length)[: n.size]
    angle = 2.0 * np.pi * (np.outer(n, k) % fft_length) / fft_length
    matrix = np.zeros((frame_length, 2 * k.size))
    matrix[: n.size] = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
    return matrix.astype(np.float32)


def two_stage_factors(fft_length: int) -> tuple[int, int] | None:
    """(P, Q) with P·Q = fft_length and Q the largest divisor up to √N (P ≥ Q); None for a prime length."""
    q = max(d for d in range(1, math.isqrt(fft_length) + 1) if fft_length % d == 0)
    return (fft_length // q, q) if q > 1 else None


def _unit_roots(rows: int, columns: int, period: int) -> np.ndarray:
    """[rows, columns] complex128 matrix of exp(-2πi·r·c / period)."""
    return np.exp(-2j * np.pi * (np.outer(np.arange(rows), np.arange(columns)) % period) / period)


MAX_DFT_BYTES = 256 * 2**20
"""Most bytes of DFT constants a TFLite spectrum may hold: an FFT length whose only factorisations have a large
factor (a prime) needs a matrix growing with its square (16001 samples: 2 GB, beyond what a flatbuffer holds)."""


def _check_constant_size(frame_length: int, fft_length: int, factors: tuple[int, int] | None) -> None:
    """A DsplError where the spectrum's float32 DFT constants would exceed MAX_DFT_BYTES, before any is built."""
    if factors is None:
        count = frame_length * 2 * (fft_length // 2 + 1)
    else:
        p, q = factors
        count = frame_length + 2 * p * p + 2 * q * p + 4 * q * (q // 2 + 1)  # window, inner, twiddles, outer
    if 4 * count > MAX_DFT_BYTES:
        suggestion = 1 << (fft_length - 1).bit_length()
        raise DsplError(f"stft_fft_length: an FFT of {fft_length} samples needs {4 * count / 2**20:,.0f} MB of DFT "
                        f"constants in a TFLite model (at most {MAX_DFT_BYTES // 2**20} MB: its factors are too "
                        f"large); choose a length with small factors, e.g. {suggestion} samples")


class PowerSpectrum:
    """|DFT|² of periodic-Hann-windowed frames: [B, F, frame_length] -> [B, F, fft_length // 2 + 1].

    Frames longer than fft_length are cut, shorter ones zero-padded, after the window (as tf.signal.stft does).
    Uses the two-stage product where it needs fewer multiply-adds than the one DFT matrix.
    """

    def __init__(self, frame_length: int, fft_length: int) -> None:
        self.frame_length, self.fft_length = frame_length, fft_length
        self.bins = fft_length // 2 + 1
        factors = two_stage_factors(fft_length)
        cheaper = factors is not None and 2 * fft_length * (sum(factors) + 2) < frame_length * 2 * self.bins
        self.factors = factors if cheaper else None  # multiply-adds per frame: two stages vs one DFT matrix
        _check_constant_size(frame_length, fft_length, self.factors)
        if self.factors is None:
            self._dft = dft_matrix(frame_length, fft_length)
            return
        p, q = self.factors
        self._half = q // 2 + 1  # k2 up to Q/2 covers every bin k <= N/2
        inner = _unit_roots(p, p, p)                               # [n2, k1]
        outer = _unit_roots(q, self._half, q)                      # [n1, k2]
        self._window = periodic_hann(frame_length).astype(np.float32)
        self._inner = np.concatenate([inner.real, inner.imag], axis=1).astype(np.float32)  # [P, 2P]: re | im
        twiddle = _unit_roots(q, p, fft_length)                    # [n1, k1]
        self._twiddle = (twiddle.real.astype(np.float32), twiddle.imag.astype(np.float32))
        # (re n1 | im n1) -> (re k2 | im k2) for one complex product per element
        self._outer = np.block([[outer.real, outer.imag], [-outer.imag, outer.real]]).astype(np.float32)

    def __call__(self, frames: tf.Tensor) -> tf.Tensor:
        if self.factors is None:
            real, imag = tf.split(tf.matmul(frames, self._dft), 2, axis=2)  # [B, F, 2 * bins]: real | imag
            return real * real + imag * imag
        return self._two_stage(self._fit(frames * self._window))

    def _fit(self, windowed: tf.Tensor) -> tf.Tensor:
        """Cut or zero-pad windowed frames to fft_length."""
        if self.fft_length < self.frame_length:
            return windowed[:, :, : self.fft_length]
        if self.fft_length > self.frame_length:
            return tf.pad(windowed, [[0, 0], [0, 0], [0, self.fft_length - self.frame_length]])
        return windowed

    def _two_stage(self, frames: tf.Tensor) -> tf.Tensor:
        p, q = self.factors
        leading = tf.shape(frames)[:2]
        columns = tf.transpose(tf.reshape(frames, [-1, p, q]), [0, 2, 1])   # [B·F, n1, n2]
        inner = tf.matmul(columns, self._inner)                             # [B·F, n1, 2P]
        re, im = inner[..., :p], inner[..., p:]
        twiddle_re, twiddle_im = self._twiddle
        turned = tf.concat([re * twiddle_re - im * twiddle_im, re * twiddle_im + im * twiddle_re], axis=1)
        spectrum = tf.matmul(tf.transpose(turned, [0, 2, 1]), self._outer)  # [B·F, k1, 2·(Q/2 + 1)]
        half = self._half
        re, im = spectrum[..., :half], spectrum[..., half:]
        power = re * re + im * im                                           # [B·F, k1, k2]
        in_bin_order = tf.reshape(tf.transpose(power, [0, 2, 1]), tf.concat([leading, [half * p]], axis=0))
        return in_bin_order[:, :, : self.bins]
