"""nn.Module wrappers: raw audio chunks -> spectrogram features -> coloured plot images, batched on any device.

Each module holds only its PreprocessingSpec (a configuration's ``config.spec``) and the constant matrices
derived from it, as buffers.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from dspl import threads
from dspl.errors import DsplError
from dspl.features import functional as F
from dspl.features.resize import as_selection, resize_images, resize_matrix
from dspl.spec import PreprocessingSpec, colour_table


class FeatureTransform(nn.Module):
    """Raw audio ``[B, N]`` -> features ``[B, frames, features]`` (power/mel, dB or MFCC); constants as buffers."""

    def __init__(self, spec: PreprocessingSpec) -> None:
        super().__init__()
        self.spec = spec
        self.register_buffer("window", F.hann_window(spec.frame_length).float(), persistent=False)
        if spec.mel_scale:
            mel = F.mel_weight_matrix(spec.num_mel_bins, spec.num_bins, spec.sample_rate, spec.lower_edge_hertz,
                                      spec.upper_edge_hertz)
            self.register_buffer("mel_matrix", mel.float(), persistent=False)
        if spec.num_mfccs > 0:
            dct = F.mfcc_matrix(spec.num_mel_bins, spec.num_mfccs, spec.cep_lifter)
            self.register_buffer("mfcc_matrix", dct.float(), persistent=False)

    @property
    def num_features(self) -> int:
        """Features per frame."""
        return self.spec.num_features

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` raw samples -> ``[B, frames, features]`` float32."""
        spec = self.spec
        if audio.dim() != 2:
            raise ValueError(f"expected audio of shape [batch, samples], got {tuple(audio.shape)}")
        if audio.shape[-1] < spec.frame_length:
            raise DsplError(f"audio chunk of {audio.shape[-1]} samples is shorter than the STFT window "
                            f"({spec.frame_length} samples): lengthen chunk_size or shorten stft_window_size")
        audio = audio.float()
        if spec.normalize_audio:
            audio = F.peak_normalize(audio)
        features = F.stft_power(audio, self.window, spec.frame_step, spec.fft_length)
        if spec.mel_scale:
            features = features @ self.mel_matrix
        if spec.num_mfccs > 0:
            log_mel = F.mel_to_db(features) if spec.db_scale else F.log_mel(features)
            return log_mel @ self.mfcc_matrix
        if spec.db_scale:
            return F.power_to_db(features, top_db=spec.top_db)
        return features


class PlotTransform(nn.Module):
    """Raw audio chunks ``[B, N]`` -> plot images ``[B, 3, H, W]`` on 0..255 (README: "How a chunk becomes a plot").

    With ``use_plot_images`` false it returns the raw features ``[B, 1, frames, features]`` instead.
    The images are not normalised for a backbone (the model does that). The coloured ``[frames, features]``
    matrix is resized in that orientation (image_width rows, image_height columns) and then turned a quarter
    counter-clockwise, as DeepSpectrumLite did: low frequencies end up in the bottom row, time runs left to
    right. The resize matrices for the frame axis are cached per number of frames; the one for the configured
    chunk length is built at construction.
    """

    def __init__(self, spec: PreprocessingSpec) -> None:
        super().__init__()
        self.spec = spec
        self.features = FeatureTransform(spec)
        self.register_buffer("colormap", torch.from_numpy(colour_table(spec.color_map) * 255.0).float(),
                             persistent=False)
        self._resize_cache: dict[tuple[int, torch.device], torch.Tensor] = {}
        # rot90 of the resized [W, H] image = its transpose with the rows reversed: reverse the *output* rows of
        # the feature-axis matrix (reversing its input, the features, would resize a flipped image instead)
        feature_matrix = self._matrix(spec.num_features, spec.image_height).flip(0)  # (an index vector flips alike)
        self.register_buffer("feature_matrix", feature_matrix, persistent=False)
        self._frame_count = max(spec.num_frames(), 1)
        self.register_buffer("frame_matrix", self._matrix(self._frame_count, spec.image_width), persistent=False)

    def _matrix(self, in_size: int, out_size: int) -> torch.Tensor:
        """The resize along one axis: a float32 matrix, or an index vector where it only selects (as_selection)."""
        matrix = resize_matrix(in_size, out_size, self.spec.resize_method, self.spec.anti_alias)
        return as_selection(torch.from_numpy(matrix).float())

    def _frame_matrix_for(self, frames: int) -> torch.Tensor:
        """The frame-axis resize matrix for ``frames`` frames on the buffers' device (built and cached on first use)."""
        if frames == self._frame_count:
            return self.frame_matrix
        key = (frames, self.frame_matrix.device)
        if key not in self._resize_cache:
            self._resize_cache[key] = self._matrix(frames, self.spec.image_width).to(self.frame_matrix.device)
        return self._resize_cache[key]

    def output_shape(self, num_samples: int) -> tuple[int, int, int]:
        """Shape of one output (without the batch) for a chunk of ``num_samples`` samples."""
        return self.spec.input_shape(num_samples)

    def forward(self, audio: torch.Tensor, lengths: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """``[B, N]`` raw samples -> ``[B, 3, H, W]`` float32 on 0..255 (or ``[B, 1, frames, features]``).

        ``lengths`` (whole-file mode): the number of real samples of each row; each plot is then made from
        that row's own samples alone, as if it had been passed by itself.
        """
        # autocast off: mixed precision would break the parity with TF; small batches on one CPU thread
        small = audio.device.type == "cpu" and audio.numel() <= threads.SMALL_WORK_SAMPLES
        with torch.autocast(audio.device.type, enabled=False), threads.work_threads(small):
            if lengths is None:
                return self._plot(audio)
            return torch.cat([self._plot(audio[i:i + 1, :int(n)]) for i, n in enumerate(lengths)])

    def _plot(self, audio: torch.Tensor) -> torch.Tensor:
        features = self.features(audio)
        if not self.spec.use_plot_images:
            return features.unsqueeze(1)
        colours = F.apply_colormap(F.minmax_scale(features.transpose(1, 2)), self.colormap)  # [B, 3, features, frames]
        rows, cols = self.feature_matrix, self._frame_matrix_for(features.shape[1])
        if rows.dtype == cols.dtype == torch.int64:  # a gather commutes with the clamp: clamp the smaller tensor
            return resize_images(colours.clamp_(0.0, 255.0), rows, cols)
        return resize_images(colours, rows, cols).clamp_(0.0, 255.0)
