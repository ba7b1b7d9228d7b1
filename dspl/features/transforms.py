"""nn.Module wrappers: raw audio chunks -> spectrogram features -> coloured plot images, batched on any device."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from dspl.data.chunking import chunk_samples
from dspl.errors import DsplError
from dspl.features import functional as F
from dspl.features.colormaps import colormap_table
from dspl.features.resize import resize_images, resize_matrix


class FeatureTransform(nn.Module):
    """Raw audio ``[B, N]`` -> features ``[B, frames, features]`` (power/mel, dB or MFCC); constants as buffers."""

    def __init__(self, hp: Mapping[str, Any]) -> None:
        super().__init__()
        sample_rate = hp["sample_rate"]
        self.normalize_audio = bool(hp["normalize_audio"])
        self.frame_length = int(hp["stft_window_size"] * sample_rate)
        self.frame_step = int(hp["stft_hop_size"] * sample_rate)
        self.fft_length = int(hp["stft_fft_length"] * sample_rate)
        self.mel_scale = bool(hp["mel_scale"])
        self.num_mfccs = int(hp["num_mfccs"]) if self.mel_scale else 0
        self.db_scale = bool(hp["db_scale"])
        self.top_db = None if hp.get("top_db") is None else float(hp["top_db"])
        self.register_buffer("window", F.hann_window(self.frame_length).float(), persistent=False)
        num_bins = self.fft_length // 2 + 1
        self.num_features = num_bins
        if self.mel_scale:
            mel = F.mel_weight_matrix(hp["num_mel_bins"], num_bins, sample_rate,
                                      hp["lower_edge_hertz"], hp["upper_edge_hertz"])
            self.register_buffer("mel_matrix", mel.float(), persistent=False)
            self.num_features = hp["num_mel_bins"]
        if self.num_mfccs > 0:
            dct = F.mfcc_matrix(hp["num_mel_bins"], self.num_mfccs, hp["cep_lifter"])
            self.register_buffer("mfcc_matrix", dct.float(), persistent=False)
            self.num_features = self.num_mfccs

    def num_frames(self, num_samples: int) -> int:
        """Frames the STFT makes of a chunk of ``num_samples`` samples."""
        return F.num_frames(num_samples, self.frame_length, self.frame_step)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` raw samples -> ``[B, frames, features]`` float32."""
        if audio.dim() != 2:
            raise ValueError(f"expected audio of shape [batch, samples], got {tuple(audio.shape)}")
        if audio.shape[-1] < self.frame_length:
            raise DsplError(f"audio chunk of {audio.shape[-1]} samples is shorter than the STFT window "
                            f"({self.frame_length} samples): lengthen chunk_size or shorten stft_window_size")
        audio = audio.float()
        if self.normalize_audio:
            audio = F.peak_normalize(audio)
        features = F.stft_power(audio, self.window, self.frame_step, self.fft_length)
        if self.mel_scale:
            features = features @ self.mel_matrix
        if self.num_mfccs > 0:
            return F.log_mel(features) @ self.mfcc_matrix
        if self.db_scale:
            return F.power_to_db(features, top_db=self.top_db)
        return features


class PlotTransform(nn.Module):
    """Raw audio chunks ``[B, N]`` -> plot images ``[B, 3, H, W]`` on 0..255 (DESIGN.md's parity contract).

    With ``use_plot_images`` false it returns the raw features ``[B, 1, frames, features]`` instead.
    The images are not normalised for a backbone (the model does that). Low frequencies are at the
    bottom row, time runs left to right. Resize matrices (with the vertical flip folded in) are cached
    per input length; the one for the configured chunk length is built at construction.
    """

    def __init__(self, hp: Mapping[str, Any]) -> None:
        super().__init__()
        self.features = FeatureTransform(hp)
        self.use_plot_images = bool(hp["use_plot_images"])
        self.image_height = int(hp["image_height"])
        self.image_width = int(hp["image_width"])
        self.resize_method = str(hp["resize_method"])
        self.anti_alias = bool(hp["anti_alias"])
        self.register_buffer("colormap", colormap_table(hp["color_map"]) * 255.0, persistent=False)
        self._resize_cache: dict[tuple[int, torch.device], torch.Tensor] = {}
        self.register_buffer("rows", self._row_matrix(), persistent=False)
        frames = self.features.num_frames(chunk_samples(hp)[0])
        self.register_buffer("cols", self._col_matrix(max(frames, 1)), persistent=False)

    def _row_matrix(self) -> torch.Tensor:
        """Feature axis -> image rows, flipped so that feature 0 (low frequency) lands on the last row."""
        matrix = resize_matrix(self.features.num_features, self.image_height, self.resize_method, self.anti_alias)
        return torch.from_numpy(matrix[:, ::-1].copy()).float()

    def _col_matrix(self, frames: int) -> torch.Tensor:
        """Frame axis -> image columns."""
        return torch.from_numpy(resize_matrix(frames, self.image_width, self.resize_method, self.anti_alias)).float()

    def _cols_for(self, frames: int) -> torch.Tensor:
        """The column matrix for ``frames`` frames on the buffers' device (built and cached on first use)."""
        if frames == self.cols.shape[1]:
            return self.cols
        key = (frames, self.cols.device)
        if key not in self._resize_cache:
            self._resize_cache[key] = self._col_matrix(frames).to(self.cols.device)
        return self._resize_cache[key]

    def output_shape(self, num_samples: int) -> tuple[int, int, int]:
        """Shape of one output (without the batch) for a chunk of ``num_samples`` samples."""
        if self.use_plot_images:
            return (3, self.image_height, self.image_width)
        return (1, self.features.num_frames(num_samples), self.features.num_features)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` raw samples -> ``[B, 3, H, W]`` float32 on 0..255 (or ``[B, 1, frames, features]``)."""
        # autocast off: mixed precision would break the parity with TF
        with torch.autocast(audio.device.type, enabled=False):
            return self._plot(audio)

    def _plot(self, audio: torch.Tensor) -> torch.Tensor:
        features = self.features(audio)
        if not self.use_plot_images:
            return features.unsqueeze(1)
        image = F.apply_colormap(F.minmax_scale(features.transpose(1, 2)), self.colormap)  # [B, 3, features, frames]
        return resize_images(image, self.rows, self._cols_for(features.shape[1])).clamp_(0.0, 255.0)
