"""TensorFlow reference of dspl's spectrogram plots (the README, "How a chunk becomes a plot") and its TFLite twin.

Reference mode is written with ``tf.signal`` and ``tf.image``, the way DeepSpectrumLite computed its plots.
TFLite mode computes the same function with operators TFLite has built in: framing by slices of the chunk cut
into hop-sized blocks where the hop divides the window (a copy; TFLite's GATHER of the same frames costs about
nine times more), else by gather; the power
spectrum as matrix products (dspl/export/tf_spectrum.py: faster than TFLite's RFFT2D kernel, and delegated);
the mel filter bank, the DCT with its lifter and the two resize passes as products with precomputed matrices
(all of them linear, so each matrix is the operator applied to unit impulses); the colour map by gather and
linear interpolation. For end-to-end models TFLite mode can also write the plot as a classifier's backbone sees it
(``normalisation``): the per-channel map ``(x/255 − mean)/std`` commutes with the resize, whose weights sum to 1,
so it is folded into the colour table and costs nothing per chunk.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import tensorflow as tf

from dspl.errors import DsplError
from dspl.export.tf_spectrum import PowerSpectrum
from dspl.models.classifier import InputNormalisation
from dspl.spec import (
    COLOUR_TABLE_SIZE,
    LOG_MEL_OFFSET,
    PEAK_LEVEL,
    POWER_FLOOR,
    PreprocessingSpec,
    colour_table,
    lifter_weights,
)

TINY = float(np.finfo(np.float32).tiny)  # guards divisions by a zero peak or a zero value range (silence)
MAX_BLOCK_SLICES = 16  # frames made of more hop-sized blocks than this are gathered (fewer operators)


def resize_matrix(size_in: int, size_out: int, method: str, antialias: bool) -> np.ndarray:
    """[size_out, size_in] matrix R with resize(v) = R @ v along one axis, exactly as tf.image.resize does it."""
    impulses = tf.eye(size_in, dtype=tf.float32)[:, :, tf.newaxis, tf.newaxis]
    resized = tf.image.resize(impulses, [size_out, 1], method=method, antialias=antialias)
    return resized[:, :, 0, 0].numpy().T


def mfcc_matrix(num_mel_bins: int, num_mfccs: int, cep_lifter: int) -> np.ndarray:
    """[mel bins, num_mfccs] matrix of tf.signal.mfccs_from_log_mel_spectrograms, truncated and liftered."""
    dct = tf.signal.mfccs_from_log_mel_spectrograms(tf.eye(num_mel_bins, dtype=tf.float32)).numpy()
    return (dct[:, :num_mfccs] * lifter_weights(num_mfccs, cep_lifter)[None, :]).astype(np.float32)


class TFPlotPipeline(tf.Module):
    """Raw chunks float32 [B, N] -> plots [B, H, W, 3] on 0..255 (NHWC), or raw features [B, frames, features, 1].

    ``tflite_compatible`` computes the same function with TFLite built-in operators only. ``num_samples``
    overrides the chunk length of the spec; 0 accepts any length (whole files), which TFLite mode supports
    where the time-axis resize is a built-in TFLite kernel (PreprocessingSpec.dynamic_length_resize).
    ``normalisation`` (TFLite mode, plots only): plots normalised for a backbone instead of on 0..255.
    """

    def __init__(self, spec: PreprocessingSpec, tflite_compatible: bool = False,
                 num_samples: int | None = None, normalisation: InputNormalisation | None = None) -> None:
        super().__init__(name="tf_plot_pipeline")
        if normalisation is not None and not (tflite_compatible and spec.use_plot_images):
            raise ValueError("a normalisation applies to plots in TFLite mode only")
        self.spec = spec
        self.tflite_compatible = tflite_compatible
        self.normalisation = normalisation
        self.num_samples = spec.chunk_samples if num_samples is None else num_samples
        if 0 < self.num_samples < spec.frame_length:
            raise DsplError(f"{self.num_samples} samples are fewer than one STFT window ({spec.frame_length} samples)")
        if tflite_compatible and self.num_samples <= 0 and not spec.dynamic_length_resize():
            raise DsplError(
                f"resize_method: value '{spec.resize_method}' (anti_alias {str(spec.anti_alias).lower()}) has no "
                "built-in TFLite kernel for inputs of any length: a TFLite preprocessor of whole files needs a fixed "
                "number of samples: pass --whole-file-seconds")
        if spec.mel_scale:
            self._mel = tf.signal.linear_to_mel_weight_matrix(  # float64 like TF's own internals, then cast
                spec.num_mel_bins, spec.num_bins, spec.sample_rate, spec.lower_edge_hertz, spec.upper_edge_hertz,
                dtype=tf.float64,
            ).numpy().astype(np.float32)
        if spec.num_mfccs > 0:
            self._lifter = lifter_weights(spec.num_mfccs, spec.cep_lifter).astype(np.float32)
        if spec.use_plot_images:
            table = colour_table(spec.color_map)
            if normalisation is not None:  # table entries are on 0..1, the normalisation's input on 0..255
                table = 255.0 * table * normalisation.scale + normalisation.shift
            table = table.astype(np.float32)
            self._colours = tf.constant(table)
            self._colour_steps = tf.constant(np.diff(table, axis=0, append=table[-1:]))
        if tflite_compatible:
            self._build_matrices()
        self.function = tf.function(self._forward, input_signature=[tf.TensorSpec([None, self._length], tf.float32)])

    @property
    def _length(self) -> int | None:
        """The input length of the traced graphs (None: any)."""
        return self.num_samples if self.num_samples > 0 else None

    def __call__(self, audio: tf.Tensor) -> tf.Tensor:
        """Plots (or raw features) of a batch of raw chunks."""
        return self.function(audio)

    def concrete_function(self, batch_size: int | None = None) -> tf.types.experimental.ConcreteFunction:
        """The traced graph for input [batch_size, N] (e.g. batch 1 for a TFLite preprocessor)."""
        spec = tf.TensorSpec([batch_size, self._length], tf.float32, name="audio")
        return tf.function(self._forward).get_concrete_function(spec)

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Shape of one output item: (H, W, 3), or (frames, features, 1) without plots (frames None if dynamic)."""
        spec = self.spec
        if spec.use_plot_images:
            return (spec.image_height, spec.image_width, 3)
        return (spec.num_frames(self.num_samples) if self._length else None, spec.num_features, 1)

    # -- construction of the TFLite-mode constants ---------------------------------------------------------------

    def _build_matrices(self) -> None:
        """Precompute the framing indices, the power spectrum's DFT stages and the DCT and resize matrices."""
        spec = self.spec
        if self._length and self._blocks_per_frame is None:
            starts = np.arange(spec.num_frames(self.num_samples)) * spec.frame_step
            indices = starts[:, None] + np.arange(spec.frame_length)[None, :]
            self._frame_indices = tf.constant(indices.astype(np.int32))
        self._power_spectrum = PowerSpectrum(spec.frame_length, spec.fft_length)
        if spec.num_mfccs > 0:
            self._dct = tf.constant(mfcc_matrix(spec.num_mel_bins, spec.num_mfccs, spec.cep_lifter))
        if spec.use_plot_images:
            method, antialias = spec.resize_method, spec.anti_alias
            # A quarter turn counter-clockwise of the resized [W, H] image is its transpose with the rows reversed:
            # the feature-axis matrix gets its *output* rows reversed, so row 0 of the image is the highest feature.
            rows = resize_matrix(spec.num_features, spec.image_height, method, antialias)[::-1]
            self._rows_t = tf.constant(np.ascontiguousarray(rows.T))
            overshoots = rows.min() < 0.0  # negative weights (cubic, Lanczos) can leave the colour range
            if self._length:
                cols = resize_matrix(spec.num_frames(self.num_samples), spec.image_width, method, antialias)
                self._cols_t = tf.constant(np.ascontiguousarray(cols.T))
                overshoots = overshoots or cols.min() < 0.0
            self._normalised_bounds = None
            if self.normalisation is not None and overshoots:  # the 0..255 clip, mapped per channel
                scale, shift = self.normalisation.scale, self.normalisation.shift
                self._normalised_bounds = (tf.constant(shift.astype(np.float32)),
                                           tf.constant((255.0 * scale + shift).astype(np.float32)))

    # -- the computation --------------------------------------------------------------------------------------------

    def _forward(self, audio: tf.Tensor) -> tf.Tensor:
        spec = self.spec
        if spec.normalize_audio:
            peak = tf.reduce_max(tf.abs(audio), axis=1, keepdims=True)
            audio = audio * (PEAK_LEVEL / tf.maximum(peak, TINY))
        power = self._power_tflite(audio) if self.tflite_compatible else self._power_reference(audio)
        features = self._features(power)
        if not spec.use_plot_images:
            return tf.expand_dims(features, -1)
        colours = self._colour_map(self._min_max(features))  # [B, frames, features, 3]
        if not self.tflite_compatible:
            return self._resize_reference(colours)
        image = self._resize_tflite(colours) if self._length else self._resize_tflite_any_length(colours)
        if self.normalisation is None:
            return tf.clip_by_value(image * 255.0, 0.0, 255.0)
        return image if self._normalised_bounds is None else tf.clip_by_value(image, *self._normalised_bounds)

    def _power_reference(self, audio: tf.Tensor) -> tf.Tensor:
        spec = self.spec
        stft = tf.signal.stft(audio, spec.frame_length, spec.frame_step, spec.fft_length,
                              window_fn=partial(tf.signal.hann_window, periodic=True), pad_end=False)
        return tf.square(tf.abs(stft))

    @property
    def _blocks_per_frame(self) -> int | None:
        """How many hop-sized blocks make one frame, where a fixed-length chunk can be framed by slicing blocks."""
        length, step = self.spec.frame_length, self.spec.frame_step
        blocks = length // step
        return blocks if length % step == 0 and blocks <= MAX_BLOCK_SLICES else None

    def _frames(self, audio: tf.Tensor) -> tf.Tensor:
        """[B, frames, frame_length]: for a fixed length by slices of hop-sized blocks (frame i is blocks i to
        i + k - 1) or by gather with fixed indices; for any length by tf.signal.frame."""
        if not self._length:
            return tf.signal.frame(audio, self.spec.frame_length, self.spec.frame_step, pad_end=False)
        k = self._blocks_per_frame
        if k is None:
            return tf.gather(audio, self._frame_indices, axis=1)
        frames, step = self.spec.num_frames(self.num_samples), self.spec.frame_step
        blocks = tf.reshape(audio[:, : (frames + k - 1) * step], [-1, frames + k - 1, step])
        return tf.concat([blocks[:, i: i + frames] for i in range(k)], axis=2)

    def _power_tflite(self, audio: tf.Tensor) -> tf.Tensor:
        return self._power_spectrum(self._frames(audio))

    def _features(self, power: tf.Tensor) -> tf.Tensor:
        """Mel filter bank, then MFCCs (log-mel, DCT, lifter) or dB per the spec."""
        spec = self.spec
        if spec.mel_scale:
            power = tf.matmul(power, self._mel)
        if spec.num_mfccs > 0:
            log_mel = self._mel_db(power) if spec.db_scale else tf.math.log(power + LOG_MEL_OFFSET)
            if self.tflite_compatible:
                return tf.matmul(log_mel, self._dct)
            mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : spec.num_mfccs]
            return mfccs * self._lifter
        if spec.db_scale:
            db = _log10(tf.maximum(power, POWER_FLOOR), 10.0)  # absolute dB: reference power 1
            if spec.top_db is not None:
                db = tf.maximum(db, tf.reduce_max(db, axis=[1, 2], keepdims=True) - spec.top_db)
            return db
        return power

    @staticmethod
    def _mel_db(mel: tf.Tensor) -> tf.Tensor:
        """20·log10(max(POWER_FLOOR, M) / max M) per item: the mel power taken as an amplitude, 0 dB at its peak."""
        peak = tf.reduce_max(mel, axis=[1, 2], keepdims=True)
        return _log10(tf.maximum(mel, POWER_FLOOR), 20.0) - _log10(tf.maximum(peak, POWER_FLOOR), 20.0)

    def _min_max(self, features: tf.Tensor) -> tf.Tensor:
        """Scale each item to [0, 1]; a constant item (silence) becomes all zeros."""
        low = tf.reduce_min(features, axis=[1, 2], keepdims=True)
        high = tf.reduce_max(features, axis=[1, 2], keepdims=True)
        return (features - low) / tf.maximum(high - low, TINY)

    def _colour_map(self, values: tf.Tensor) -> tf.Tensor:
        """Linear interpolation in the 256-entry colour table: [...] in 0..1 -> [..., 3]."""
        position = values * float(COLOUR_TABLE_SIZE - 1)
        index = tf.minimum(tf.cast(position, tf.int32), COLOUR_TABLE_SIZE - 2)
        fraction = tf.expand_dims(position - tf.cast(index, tf.float32), -1)
        return tf.gather(self._colours, index) + fraction * tf.gather(self._colour_steps, index)

    def _resize_reference(self, colours: tf.Tensor) -> tf.Tensor:
        """DeepSpectrumLite's order: resize [frames, features] to [W, H], scale, clip, then a quarter turn CCW."""
        spec = self.spec
        image = tf.image.resize(colours, [spec.image_width, spec.image_height], method=spec.resize_method,
                                antialias=spec.anti_alias)
        return tf.image.rot90(tf.clip_by_value(image * 255.0, 0.0, 255.0), k=1)

    def _resize_tflite(self, colours: tf.Tensor) -> tf.Tensor:
        channels_first = tf.transpose(colours, [0, 3, 1, 2])                 # [B, 3, frames, features]
        rows = tf.matmul(channels_first, self._rows_t)                      # [B, 3, frames, H]
        image = tf.matmul(tf.transpose(rows, [0, 1, 3, 2]), self._cols_t)   # [B, 3, H, W]
        return tf.transpose(image, [0, 2, 3, 1])

    def _resize_tflite_any_length(self, colours: tf.Tensor) -> tf.Tensor:
        """Features by the row matrix, frames by TFLite's built-in resize kernel (any number of frames)."""
        spec = self.spec
        per_frame = tf.transpose(colours, [0, 1, 3, 2])                      # [B, frames, 3, features]
        rows = tf.transpose(tf.matmul(per_frame, self._rows_t), [0, 1, 3, 2])  # [B, frames, H, 3]
        image = tf.image.resize(rows, [spec.image_width, spec.image_height], method=spec.resize_method)
        return tf.transpose(image, [0, 2, 1, 3])                             # [B, H, W, 3]


def _log10(x: tf.Tensor, factor: float) -> tf.Tensor:
    """factor·log10(x), as ln(x)·factor/ln(10) (TFLite has no LOG10)."""
    return (factor / math.log(10.0)) * tf.math.log(x)
