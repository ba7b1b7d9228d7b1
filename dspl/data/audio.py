"""Audio decoding with soundfile (WAV, FLAC, OGG, ...): mono, resampled to the configured rate."""

from __future__ import annotations

import glob
import logging
import math
import os
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dspl.errors import DsplError
from dspl.files import regular_file

logger = logging.getLogger(__name__)

SUPPORTED = "a WAV, FLAC or OGG file"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3")
BLOCK_FRAMES = 1 << 18  # frames per block when streaming a file (about 5 s at 48 kHz)
# torchaudio.functional.resample's defaults, which the streamed resampling reproduces exactly
LOWPASS_FILTER_WIDTH, ROLLOFF = 6, 0.99


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
    if info.format in ("WAV", "WAVEX"):
        _warn_if_truncated(str(path), os.path.getsize(path))
    return info.frames, info.samplerate


def _wav_data_sizes(path: str) -> tuple[int, int] | None:
    """(bytes the WAV header declares for its data chunk, bytes the file holds after it), or None if not found."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while len(chunk := f.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return size, os.path.getsize(path) - f.tell()
            f.seek(size + (size & 1), os.SEEK_CUR)
    return None


@cache
def _warn_if_truncated(path: str, file_size: int) -> None:
    """Say once per file when a WAV file ends before the audio its header declares (libsndfile reads what is
    there and tells nobody). ``file_size`` is part of the cache key only: a file that grows or is rewritten is
    checked again."""
    sizes = _wav_data_sizes(path)
    if sizes is not None and sizes[0] != 0xFFFFFFFF and sizes[1] < sizes[0]:
        logger.warning("%s: WAV file is truncated: its header declares %d bytes of audio, the file holds %d; "
                       "using the audio that is there", path, sizes[0], sizes[1])


def _checked_mono(path: Path, data: np.ndarray) -> np.ndarray:
    """Frames [N, channels] as mono float32 (channel mean); a DsplError for NaN or infinite samples."""
    finite = np.isfinite(data)
    if not finite.all():
        raise DsplError(f"{path}: {int(data.size - finite.sum())} sample(s) are NaN or infinite, expected finite "
                        "audio")
    return data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)


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
    waveform = torch.from_numpy(np.ascontiguousarray(_checked_mono(path, data)))
    if file_rate != sample_rate:
        import torchaudio.functional as F

        _log_resampling(file_rate, sample_rate)
        waveform = F.resample(waveform, file_rate, sample_rate)
    return waveform.contiguous()


def stream_audio(path: str | Path, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> Iterator[torch.Tensor]:
    """Decode a file block by block: mono float32 pieces at `sample_rate` whose concatenation is `load_audio`'s
    waveform (to float rounding), with memory bounded by the block size instead of the file's length.

    Resampling reads each block with enough neighbouring samples for torchaudio's sinc kernel, at block starts
    aligned to its period, so the pieces equal the whole file resampled at once.
    """
    path = Path(path)
    frames, file_rate = _header(path)
    period, context = 1, 0
    if file_rate != sample_rate:
        import torchaudio.functional as F

        _log_resampling(file_rate, sample_rate)
        divisor = math.gcd(file_rate, sample_rate)
        period, out_period = file_rate // divisor, sample_rate // divisor
        width = math.ceil(LOWPASS_FILTER_WIDTH * period / (min(period, out_period) * ROLLOFF))
        context = period * (-(-(width + period) // period))
        remaining = resampled_length(frames, file_rate, sample_rate)
    step = max(period, block_frames // period * period)
    try:
        with sf.SoundFile(str(path)) as f:
            for start in range(0, frames, step):
                first = max(0, start - context)
                f.seek(first)
                data = f.read(min(frames, start + step + context) - first, dtype="float32", always_2d=True)
                block = torch.from_numpy(np.ascontiguousarray(_checked_mono(path, data)))
                if not context:
                    yield block[:step]
                    continue
                resampled = F.resample(block, file_rate, sample_rate)
                skip = (start - first) // period * out_period
                piece = resampled[skip:skip + min(step // period * out_period, remaining)]
                remaining -= piece.shape[0]
                yield piece
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DsplError(f"{path}: cannot decode audio ({_reason(exc)}), expected {SUPPORTED}") from None


def find_audio_files(data_dir: str | Path) -> list[Path]:
    """Every audio file soundfile can read under data_dir (recursive), sorted; DsplError if there are none.

    data_dir may also be one file, or a glob such as `audio/*.wav` (DeepSpectrumLite's predict took one).
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        return [regular_file(data_dir, "audio file")]
    if not data_dir.exists() and glob.has_magic(str(data_dir)):
        files = _regular_audio_files(Path(p) for p in glob.glob(str(data_dir), recursive=True))
        if not files:
            raise DsplError(f"{data_dir}: the pattern matches no audio files")
        return files
    if not data_dir.is_dir():
        raise DsplError(f"{data_dir}: no such audio file or directory")
    files = _regular_audio_files(data_dir.rglob("*"))
    if not files:
        raise DsplError(f"{data_dir}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
    return files


def _regular_audio_files(paths: Iterable[Path]) -> list[Path]:
    """The regular files with an audio suffix among ``paths``, sorted; FIFOs, sockets and devices so named are
    skipped with a warning (reading one could block), directories silently."""
    named = sorted(p for p in paths if p.suffix.lower() in AUDIO_SUFFIXES)
    for special in (p for p in named if not p.is_file() and not p.is_dir()):
        logger.warning("%s: skipped: not a regular file", special)
    return [p for p in named if p.is_file()]
