"""Audio decoding with soundfile (WAV, FLAC, OGG, ...): mono, resampled to the configured rate."""

from __future__ import annotations

import glob
import logging
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dspl.errors import DsplError

logger = logging.getLogger(__name__)

SUPPORTED = "a WAV, FLAC or OGG file"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3")


def _reason(exc: Exception) -> str:
    """libsndfile's own explanation of a failure, without soundfile's repetition of the path."""
    return str(getattr(exc, "error_string", "") or exc).strip()


def _header(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from a file's header; a DsplError names a missing, unreadable, corrupt or empty file."""
    if not path.exists():
        raise DsplError(f"{path}: audio file not found")
    if not path.is_file():
        raise DsplError(f"{path}: is not a file, expected {SUPPORTED}")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DsplError(f"{path}: cannot decode audio ({_reason(exc)}), expected {SUPPORTED}") from None
    except OSError as exc:
        raise DsplError(f"{path}: cannot read: {exc.strerror}") from None
    if info.frames <= 0:
        raise DsplError(f"{path}: audio file is empty (0 samples)")
    return info.frames, info.samplerate


def resampled_length(frames: int, file_rate: int, sample_rate: int) -> int:
    """Samples after resampling `frames` samples from `file_rate` to `sample_rate` (as torchaudio does: ceil)."""
    return -(-frames * sample_rate // file_rate)


def audio_frames(path: str | Path, sample_rate: int) -> int:
    """Number of samples the file has at `sample_rate`, read from its header without decoding it."""
    frames, file_rate = _header(Path(path))
    return resampled_length(frames, file_rate, sample_rate)


@cache
def _log_resampling(file_rate: int, sample_rate: int) -> None:
    """Say once per rate pair that files are resampled (it costs time and changes the signal)."""
    logger.info("resampling audio from %d Hz to %d Hz (sample_rate of the config)", file_rate, sample_rate)


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Decode a file to float32 [N] mono (channel mean) at `sample_rate`, resampling with torchaudio if needed."""
    path = Path(path)
    _header(path)
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DsplError(f"{path}: cannot decode audio ({_reason(exc)}), expected {SUPPORTED}") from None
    if data.shape[0] == 0:
        raise DsplError(f"{path}: audio file is empty (0 samples)")
    mono = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    waveform = torch.from_numpy(np.ascontiguousarray(mono))
    if file_rate != sample_rate:
        import torchaudio.functional as F

        _log_resampling(file_rate, sample_rate)
        waveform = F.resample(waveform, file_rate, sample_rate)
    return waveform.contiguous()


def find_audio_files(data_dir: str | Path) -> list[Path]:
    """Every audio file soundfile can read under data_dir (recursive), sorted; DsplError if there are none.

    data_dir may also be one file, or a glob such as `audio/*.wav` (DeepSpectrumLite's predict took one).
    """
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return [data_dir]
    if not data_dir.exists() and glob.has_magic(str(data_dir)):
        matches = sorted(Path(p) for p in glob.glob(str(data_dir), recursive=True))
        files = [p for p in matches if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
        if not files:
            raise DsplError(f"{data_dir}: the pattern matches no audio files")
        return files
    if not data_dir.is_dir():
        raise DsplError(f"{data_dir}: no such audio file or directory")
    files = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise DsplError(f"{data_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    return files
