"""TensorFlow reference of dspl's spectrogram plots (DESIGN.md, "Preprocessing semantics") and its TFLite twin.

Reference mode is written with ``tf.signal`` and ``tf.image``, the way DeepSpectrumLite computed its plots.
TFLite mode computes the same function with operators TFLite has built in: framing by gather; the power
spectrum by RFFT2D for power-of-two FFT lengths, else as a product with a precomputed windowed DFT matrix;
the mel filter bank, the DCT with its lifter and the two resize passes as products with precomputed matrices
(all of them linear, so each matrix is the operator applied to unit impulses); the colour map by gather and
linear interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import tensorflow as tf

from dspl.config import HParams
from dspl.errors import DsplError

PEAK_LEVEL = 0.7079       # normalize_audio scales each chunk's peak magnitude to this (about -3 dBFS)
POWER_FLOOR = 1e-16       # power_to_db: 10 * log10(max(POWER_FLOOR, S)) minus the same of the peak
LOG_MEL_OFFSET = 1e-6     # MFCCs start from the log-mel spectrogram ln(mel + LOG_MEL_OFFSET)
COLOUR_TABLE_SIZE = 256   # entries of matplotlib's colour tables
TINY = float(np.finfo(np.float32).tiny)  # guards divisions by a zero peak or a zero value range (silence)


@dataclass(frozen=True)
class Geometry:
    """The sizes a configuration implies: chunk length (0 = any), STFT framing and number of features."""

    num_samples: int
    frame_length: int
    frame_step: int
    fft_length: int
    num_features: int

    @property
    def num_bins(self) -> int:
        """Bins of the one-sided spectrum."""
        return self.fft_length // 2 + 1

    @property
    def num_frames(self) -> int:
        """STFT frames of one chunk (no padding); only meaningful for a fixed chunk length."""
        return 1 + (self.num_samples - self.frame_length) // self.frame_step


def geometry(hp: HParams, num_samples: int | None = None) -> Geometry:
    """Sizes from the hyper-parameters; num_samples defaults to the chunk length (0 for whole files)."""
    if num_samples is None:
        from dspl.data.chunking import chunk_samples

        num_samples = chunk_samples(hp)[0]
    rate = hp["sample_rate"]
    frame_length = int(hp["stft_window_size"] * rate)
    if hp["num_mfccs"] > 0:
        num_features = hp["num_mfccs"]
    elif hp["mel_scale"]:
        num_features = hp["num_mel_bins"]
    else:
        num_features = int(hp["stft_fft_length"] * rate) // 2 + 1
    if 0 < num_samples < frame_length:
        raise DsplError(
            f"chunk_size: value {hp['chunk_size']} gives {num_samples} samples, fewer than one STFT window "
            f"(stft_window_size {hp['stft_window_size']} = {frame_length} samples)"
        )
    return Geometry(num_samples, frame_length, int(hp["stft_hop_size"] * rate), int(hp["stft_fft_length"] * rate),
                    num_features)


def colour_table(name: str) -> np.ndarray:
    """Matplotlib's 256-entry table of a colour map as float32 [256, 3] RGB in 0..1."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    if cmap.N != COLOUR_TABLE_SIZE:
        raise DsplError(f"color_map: '{name}' has {cmap.N} entries, expected {COLOUR_TABLE_SIZE}")
    return np.asarray(cmap(np.arange(COLOUR_TABLE_SIZE))[:, :3], dtype=np.float32)


def resize_matrix(size_in: int, size_out: int, method: str, antialias: bool) -> np.ndarray:
    """[size_out, size_in] matrix R with resize(v) = R @ v along one axis, exactly as tf.image.resize does it."""
    impulses = tf.eye(size_in, dtype=tf.float32)[:, :, tf.newaxis, tf.newaxis]
    resized = tf.image.resize(impulses, [size_out, 1], method=method, antialias=antialias)
    return resized[:, :, 0, 0].numpy().T


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


def is_power_of_two(n: int) -> bool:
    """Whether n is 1, 2, 4, 8, ..."""
    return n > 0 and n & (n - 1) == 0


def lifter(num_mfccs: int, cep_lifter: int) -> np.ndarray:
    """Cepstral lifter weights 1 + (L/2) sin(pi n / L) for n < num_mfccs (all ones when L is 0)."""
    if cep_lifter <= 0:
        return np.ones(num_mfccs, dtype=np.float32)
    n = np.arange(num_mfccs)
    return (1.0 + cep_lifter / 2.0 * np.sin(np.pi * n / cep_lifter)).astype(np.float32)


def mfcc_matrix(num_mel_bins: int, num_mfccs: int, cep_lifter: int) -> np.ndarray:
    """[mel bins, num_mfccs] matrix of tf.signal.mfccs_from_log_mel_spectrograms, truncated and liftered."""
    dct = tf.signal.mfccs_from_log_mel_spectrograms(tf.eye(num_mel_bins, dtype=tf.float32)).numpy()
    return (dct[:, :num_mfccs] * lifter(num_mfccs, cep_lifter)[None, :]).astype(np.float32)


class TFPlotPipeline(tf.Module):
    """Raw chunks float32 [B, N] -> plots [B, H, W, 3] on 0..255 (NHWC), or raw features [B, frames, features, 1].

    ``tflite_compatible`` computes the same function with TFLite built-in operators only (needs a fixed N).
    ``num_samples`` overrides the chunk length the hyper-parameters imply (0 accepts any length).
    """

    def __init__(self, hp: HParams, tflite_compatible: bool = False, num_samples: int | None = None) -> None:
        super().__init__(name="tf_plot_pipeline")
        self.hp = dict(hp)
        self.tflite_compatible = tflite_compatible
        self.geometry = geometry(hp, num_samples)
        g = self.geometry
        if tflite_compatible and g.num_samples <= 0:
            raise DsplError(
                f"chunk_size: value {hp['chunk_size']}: a TFLite preprocessor needs a fixed chunk length, "
                "expected chunk_size > 0"
            )
        if hp["mel_scale"]:
            self._mel = tf.signal.linear_to_mel_weight_matrix(  # float64 like TF's own internals, then cast
                hp["num_mel_bins"], g.num_bins, hp["sample_rate"], hp["lower_edge_hertz"], hp["upper_edge_hertz"],
                dtype=tf.float64,
            ).numpy().astype(np.float32)
        if hp["num_mfccs"] > 0:
            self._lifter = lifter(hp["num_mfccs"], hp["cep_lifter"])
        if hp["use_plot_images"]:
            table = colour_table(hp["color_map"])
            self._colours = tf.constant(table)
            self._colour_steps = tf.constant(np.diff(table, axis=0, append=table[-1:]))
        if tflite_compatible:
            self._build_matrices()
        length = g.num_samples if g.num_samples > 0 else None
        self.function = tf.function(self._forward, input_signature=[tf.TensorSpec([None, length], tf.float32)])

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        """Plots (or raw features) of a batch of raw chunks."""
        return self.function(audio)

    def concrete_function(self, batch_size: int | None = None) -> tf.types.experimental.ConcreteFunction:
        """The traced graph for input [batch_size, N] (e.g. batch 1 for a TFLite preprocessor)."""
        length = self.geometry.num_samples if self.geometry.num_samples > 0 else None
        spec = tf.TensorSpec([batch_size, length], tf.float32, name="audio")
        return tf.function(self._forward).get_concrete_function(spec)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Shape of one output item: (H, W, 3), or (frames, features, 1) without plots (frames None if dynamic)."""
        if self.hp["use_plot_images"]:
            return (self.hp["image_height"], self.hp["image_width"], 3)
        frames = self.geometry.num_frames if self.geometry.num_samples > 0 else None
        return (frames, self.geometry.num_features, 1)

    # -- construction of the TFLite-mode constants ---------------------------------------------------------------

    def _build_matrices(self) -> None:
        """Precompute the framing indices and the DFT, mel, DCT and resize matrices for TFLite mode."""
        g, hp = self.geometry, self.hp
        starts = np.arange(g.num_frames) * g.frame_step
        self._frame_indices = tf.constant((starts[:, None] + np.arange(g.frame_length)[None, :]).astype(np.int32))
        if is_power_of_two(g.fft_length):
            self._dft = None
            self._window = tf.constant(periodic_hann(g.frame_length).astype(np.float32))
        else:  # RFFT2D takes powers of two only: a windowed DFT matrix instead (frame_length x 2 * bins floats)
            self._dft = tf.constant(dft_matrix(g.frame_length, g.fft_length))
        if hp["num_mfccs"] > 0:
            self._dct = tf.constant(mfcc_matrix(hp["num_mel_bins"], hp["num_mfccs"], hp["cep_lifter"]))
        if hp["use_plot_images"]:
            method, antialias = hp["resize_method"], hp["anti_alias"]
            rows = resize_matrix(g.num_features, hp["image_height"], method, antialias)
            # Frequency runs up the image: image row 0 is the highest feature, so the row matrix reads it reversed.
            self._rows_t = tf.constant(np.ascontiguousarray(rows[:, ::-1].T))
            self._cols_t = tf.constant(np.ascontiguousarray(resize_matrix(g.num_frames, hp["image_width"], method,
                                                                          antialias).T))

    # -- the computation --------------------------------------------------------------------------------------------

    def _forward(self, audio: tf.Tensor) -> tf.Tensor:
        if self.hp["normalize_audio"]:
            peak = tf.reduce_max(tf.abs(audio), axis=1, keepdims=True)
            audio = audio * (PEAK_LEVEL / tf.maximum(peak, TINY))
        power = self._power_tflite(audio) if self.tflite_compatible else self._power_reference(audio)
        features = self._features(power)
        if not self.hp["use_plot_images"]:
            return features[..., tf.newaxis]
        colours = self._colour_map(self._min_max(features))  # [B, frames, features, 3]
        image = self._resize_tflite(colours) if self.tflite_compatible else self._resize_reference(colours)
        return tf.clip_by_value(image * 255.0, 0.0, 255.0)

    def _power_reference(self, audio: tf.Tensor) -> tf.Tensor:
        g = self.geometry
        stft = tf.signal.stft(audio, g.frame_length, g.frame_step, g.fft_length,
                              window_fn=partial(tf.signal.hann_window, periodic=True), pad_end=False)
        return tf.square(tf.abs(stft))

    def _power_tflite(self, audio: tf.Tensor) -> tf.Tensor:
        frames = tf.gather(audio, self._frame_indices, axis=1)  # [B, frames, frame_length]
        g = self.geometry
        if self._dft is None:  # power-of-two FFT: TFLite's built-in RFFT2D
            windowed = frames * self._window
            if g.fft_length < g.frame_length:
                windowed = windowed[:, :, : g.fft_length]
            elif g.fft_length > g.frame_length:
                windowed = tf.pad(windowed, [[0, 0], [0, 0], [0, g.fft_length - g.frame_length]])
            spectrum = tf.signal.rfft(windowed, [g.fft_length])
            real, imag = tf.math.real(spectrum), tf.math.imag(spectrum)
        else:
            real, imag = tf.split(tf.matmul(frames, self._dft), 2, axis=2)  # [B, frames, 2 * bins]: real | imag
        return real * real + imag * imag

    def _features(self, power: tf.Tensor) -> tf.Tensor:
        """Mel filter bank, then MFCCs (log-mel, DCT, lifter) or dB per the configuration."""
        hp = self.hp
        if hp["mel_scale"]:
            power = tf.matmul(power, self._mel)
        if hp["num_mfccs"] > 0:
            log_mel = tf.math.log(power + LOG_MEL_OFFSET)
            if self.tflite_compatible:
                return tf.matmul(log_mel, self._dct)
            mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : hp["num_mfccs"]]
            return mfccs * self._lifter
        if hp["db_scale"]:
            # Per-sample reference (DeepSpectrumLite used the batch's peak): 0 dB at each chunk's own peak.
            db = (10.0 / math.log(10.0)) * tf.math.log(tf.maximum(power, POWER_FLOOR))
            db = db - tf.reduce_max(db, axis=[1, 2], keepdims=True)
            if hp.get("top_db") is not None:
                db = tf.maximum(db, -float(hp["top_db"]))
            return db
        return power

    def _min_max(self, features: tf.Tensor) -> tf.Tensor:
        """Scale each item to [0, 1]; a constant item (silence) becomes all zeros."""
        low = tf.reduce_min(features, axis=[1, 2], keepdims=True)
        high = tf.reduce_max(features, axis=[1, 2], keepdims=True)
        return (features - low) / tf.maximum(high - low, TINY)

    def _colour_map(self, values: tf.Tensor) -> tf.Tensor:
        """Linear interpolation in the 256-entry colour table: [...] in 0..1 -> [..., 3]."""
        position = values * float(COLOUR_TABLE_SIZE - 1)
        index = tf.minimum(tf.cast(position, tf.int32), COLOUR_TABLE_SIZE - 2)
        fraction = (position - tf.cast(index, tf.float32))[..., tf.newaxis]
        return tf.gather(self._colours, index) + fraction * tf.gather(self._colour_steps, index)

    def _resize_reference(self, colours: tf.Tensor) -> tf.Tensor:
        image = tf.reverse(tf.transpose(colours, [0, 2, 1, 3]), axis=[1])  # [B, features (high first), frames, 3]
        size = [self.hp["image_height"], self.hp["image_width"]]
        return tf.image.resize(image, size, method=self.hp["resize_method"], antialias=self.hp["anti_alias"])

    def _resize_tflite(self, colours: tf.Tensor) -> tf.Tensor:
        channels_first = tf.transpose(colours, [0, 3, 1, 2])                 # [B, 3, frames, features]
        rows = tf.matmul(channels_first, self._rows_t)                      # [B, 3, frames, H]
        image = tf.matmul(tf.transpose(rows, [0, 1, 3, 2]), self._cols_t)   # [B, 3, H, W]
        return tf.transpose(image, [0, 2, 3, 1])
