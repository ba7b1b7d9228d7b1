"""Audio decoding with soundfile (WAV, FLAC, OGG, ...): mono, resampled to the configured rate.

Resampling is torchaudio's windowed-sinc interpolation. torchaudio builds one kernel of
``new/gcd × (orig/gcd + 2·width)`` values per rate pair, small for the usual rates (44.1 kHz to 16 kHz: 76 000)
but gigabytes for rates that share no factor (44 101 Hz to 16 kHz: 706 million). Pairs whose kernel would exceed
MAX_KERNEL are resampled by `_DirectResampler`, which evaluates the same interpolation for a bounded number of
output samples at a time, at the exact ratio of the rates (no approximation: pitch and duration stay exact).
"""

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
# The file sample rates dspl decodes: 1 kHz (far below telephone audio's 8 kHz) to 768 kHz, the highest rate audio
# interfaces record; a rate outside is a broken header, and would ask resampling for absurd amounts of work.
MIN_FILE_RATE, MAX_FILE_RATE = 1000, 768000
# Most values torchaudio's polyphase kernel may have (8 MB in float64) before the direct resampler is used;
# the largest of the usual rate pairs (11.025 kHz to 16 kHz) needs 291 200, so they keep torchaudio's exact result.
MAX_KERNEL = 1 << 20
# Most values (output samples × taps) each array of one step of the direct resampler holds (2 MB in float64).
MAX_WORK = 1 << 18


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
    if not MIN_FILE_RATE <= info.samplerate <= MAX_FILE_RATE:
        raise DsplError(f"{path}: sample rate {info.samplerate} Hz is out of range, expected {MIN_FILE_RATE} to "
                        f"{MAX_FILE_RATE} Hz")
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


class _PolyphaseResampler:
    """torchaudio.functional.resample itself (a whole file gets bit for bit its result, which DeepSpectrumLite's
    parity tests rely on), also for blocks that start at a multiple of its period."""

    def __init__(self, file_rate: int, sample_rate: int) -> None:
        divisor = math.gcd(file_rate, sample_rate)
        self.file_rate, self.sample_rate = file_rate, sample_rate
        self.period, self.out_period = file_rate // divisor, sample_rate // divisor
        width = math.ceil(LOWPASS_FILTER_WIDTH * self.period / (min(self.period, self.out_period) * ROLLOFF))
        self.kernel_size = self.out_period * (self.period + 2 * width)  # values of torchaudio's kernel
        self.context = self.period * (-(-(width + self.period) // self.period))  # input samples read either side

    def __call__(self, block: torch.Tensor, first: int, start: int, stop: int) -> torch.Tensor:
        """Output samples [start, stop) of the file from ``block``, its input samples from ``first`` on."""
        import torchaudio.functional as F

        offset = first // self.period * self.out_period
        return F.resample(block, self.file_rate, self.sample_rate)[start - offset:stop - offset]


class _DirectResampler:
    """torchaudio's interpolation (a Hann-windowed sinc, cut off at ROLLOFF of the lower Nyquist frequency) at
    the exact ratio of any two rates, computed a bounded number of output samples and taps at a time (MAX_WORK
    values), its weights evaluated where each output sample lies instead of taken from a kernel per phase.

    Equal to torchaudio's result to float rounding wherever both run; blocks may start at any sample.
    """

    period = 1

    def __init__(self, file_rate: int, sample_rate: int) -> None:
        self.file_rate, self.sample_rate = file_rate, sample_rate
        self.scale = min(1.0, sample_rate / file_rate) * ROLLOFF  # the cut-off over the file's Nyquist frequency
        self.context = math.ceil(LOWPASS_FILTER_WIDTH / self.scale) + 1  # input samples read either side
        self.taps = torch.arange(-self.context, self.context + 1, dtype=torch.float64)
        self.rows = max(1, MAX_WORK // self.taps.numel())

    def weights(self, offsets: torch.Tensor) -> torch.Tensor:
        """The kernel at ``offsets``, input samples from the output sample's position."""
        t = (offsets * self.scale).clamp_(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
        window = torch.cos(t * (math.pi / (2 * LOWPASS_FILTER_WIDTH))) ** 2
        t *= math.pi
        return torch.where(t == 0, 1.0, torch.sin(t) / t) * window * self.scale

    def __call__(self, block: torch.Tensor, first: int, start: int, stop: int) -> torch.Tensor:
        """Output samples [start, stop) of the file from ``block``, its input samples from ``first`` on (samples
        outside the block count as silence, as torchaudio pads)."""
        pieces = [block.new_zeros(0)]
        for row in range(start, stop, self.rows):
            position = torch.arange(row, min(stop, row + self.rows)) * self.file_rate  # in 1/sample_rate samples
            before = torch.div(position, self.sample_rate, rounding_mode="floor") - first
            fraction = (position % self.sample_rate).double().div_(self.sample_rate)[:, None]
            total = torch.zeros(position.shape[0], dtype=torch.float64)
            for taps in self.taps.split(MAX_WORK):
                index = before[:, None] + taps.long()
                inside = (index >= 0) & (index < block.shape[0])
                samples = block[index.clamp_(0, block.shape[0] - 1)].double().mul_(inside)
                total += (samples * self.weights(taps - fraction)).sum(dim=1)
            pieces.append(total.float())
        return torch.cat(pieces)


def _resampler(file_rate: int, sample_rate: int) -> _PolyphaseResampler | _DirectResampler:
    """torchaudio's resampler where its kernel is small (every usual pair of rates), else the direct one; the
    log says once per pair of rates that files are resampled."""
    _log_resampling(file_rate, sample_rate)
    polyphase = _PolyphaseResampler(file_rate, sample_rate)
    return polyphase if polyphase.kernel_size <= MAX_KERNEL else _DirectResampler(file_rate, sample_rate)


def load_audio(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Decode a file to float32 [N] mono (channel mean) at `sample_rate`, resampling it if needed."""
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
        length = resampled_length(waveform.shape[0], file_rate, sample_rate)
        waveform = _resampler(file_rate, sample_rate)(waveform, 0, 0, length)
    return waveform.contiguous()


def stream_audio(path: str | Path, sample_rate: int, block_frames: int = BLOCK_FRAMES) -> Iterator[torch.Tensor]:
    """Decode a file block by block: mono float32 pieces at `sample_rate` whose concatenation is `load_audio`'s
    waveform (to float rounding), with memory bounded by the block size instead of the file's length.

    Resampling reads each block with enough neighbouring samples for the interpolation kernel, at block starts
    aligned to the resampler's period, so the pieces equal the whole file resampled at once.
    """
    path = Path(path)
    frames, file_rate = _header(path)
    resampler = _resampler(file_rate, sample_rate) if file_rate != sample_rate else None
    period, context = (resampler.period, resampler.context) if resampler else (1, 0)
    total = resampled_length(frames, file_rate, sample_rate)
    step = max(period, block_frames // period * period)
    try:
        with sf.SoundFile(str(path)) as f:
            for start in range(0, frames, step):
                first = max(0, start - context)
                f.seek(first)
                data = f.read(min(frames, start + step + context) - first, dtype="float32", always_2d=True)
                block = torch.from_numpy(np.ascontiguousarray(_checked_mono(path, data)))
                if resampler is None:
                    yield block
                    continue
                yield resampler(block, first, resampled_length(start, file_rate, sample_rate),
                                min(total, resampled_length(start + step, file_rate, sample_rate)))
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
