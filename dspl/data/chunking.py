"""Cutting waveforms into fixed-length chunks by `chunk_size` / `chunk_hop_size` (seconds).

The rule, DeepSpectrumLite-compatible for every file at least one chunk long:
chunk = int(chunk_size * sample_rate) samples, hop = int(chunk_hop_size * sample_rate) samples, and chunks
start at 0, hop, 2 * hop, ... as long as start + chunk <= N; a trailing partial chunk is dropped.
Unlike DeepSpectrumLite, a file shorter than one chunk is never dropped: it becomes one chunk, zero-padded
at its end (with a warning). `chunk_size <= 0` takes each file whole, as one chunk of its own length (padded
only when it is shorter than one STFT window).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F

from dspl.spec import PreprocessingSpec

logger = logging.getLogger(__name__)


def num_chunks(num_samples: int, spec: PreprocessingSpec) -> int:
    """How many chunks a file of `num_samples` samples gives (at least one)."""
    if spec.whole_file or num_samples < spec.chunk_samples:
        return 1
    return (num_samples - spec.chunk_samples) // spec.hop_samples + 1


def chunk_offsets(num_samples: int, spec: PreprocessingSpec) -> list[int]:
    """Start sample of every chunk of a file of `num_samples` samples."""
    return [i * spec.hop_samples for i in range(num_chunks(num_samples, spec))]


def chunk_times(num_samples: int, spec: PreprocessingSpec) -> list[float]:
    """Start time in seconds of every chunk (the `time` column of prediction files)."""
    return [spec.seconds(offset) for offset in chunk_offsets(num_samples, spec)]


def min_samples(spec: PreprocessingSpec) -> int:
    """The fewest samples a chunk has: the chunk length, or for whole files one STFT window."""
    return spec.chunk_samples or spec.frame_length


def is_short(num_samples: int, spec: PreprocessingSpec) -> bool:
    """Whether a file is shorter than one chunk (whole files: one STFT window) and gets zero-padded."""
    return num_samples < min_samples(spec)


def extract_chunk(waveform: torch.Tensor, offset: int, length: int) -> torch.Tensor:
    """waveform[offset:offset + length], zero-padded at its end to `length` samples."""
    piece = waveform[offset:offset + length]
    return F.pad(piece, (0, length - piece.shape[0])) if piece.shape[0] < length else piece


def split_into_chunks(waveform: torch.Tensor, spec: PreprocessingSpec, source: str | None = None) -> torch.Tensor:
    """Chunks of a waveform [N] as [num_chunks, chunk_len]; a short file is padded to one chunk (warned).

    Whole-file mode gives the waveform itself as the one chunk.
    """
    minimum = min_samples(spec)
    if waveform.shape[0] < minimum:
        logger.warning("%s: %d samples (%.3f s) is shorter than one chunk (%d samples): zero-padded",
                       source or "audio", waveform.shape[0], spec.seconds(waveform.shape[0]), minimum)
        return extract_chunk(waveform, 0, minimum).unsqueeze(0)
    if spec.whole_file:
        return waveform.unsqueeze(0)
    return waveform.unfold(0, spec.chunk_samples, spec.hop_samples).contiguous()


def stream_chunks(blocks: Iterable[torch.Tensor], spec: PreprocessingSpec, source: str | None = None
                  ) -> Iterator[torch.Tensor]:
    """`split_into_chunks` over a waveform that arrives in consecutive blocks: yields [k, chunk_len] tensors
    whose concatenation equals its result, holding at most one block and one chunk of audio at a time.

    Whole-file mode (chunk_size <= 0) has no fixed chunk: use split_into_chunks on the whole waveform.
    """
    chunk, hop = spec.chunk_samples, spec.hop_samples
    if spec.whole_file:
        raise ValueError("stream_chunks needs chunk_size > 0")
    buffer = torch.zeros(0)
    start = 0  # sample index of buffer[0] in the waveform
    next_chunk = 0  # sample index where the next chunk starts
    for block in blocks:
        buffer = torch.cat([buffer, block])
        end = start + buffer.shape[0]
        if end - next_chunk >= chunk:
            count = (end - next_chunk - chunk) // hop + 1
            offset = next_chunk - start
            yield buffer[offset:offset + (count - 1) * hop + chunk].unfold(0, chunk, hop).contiguous()
            next_chunk += count * hop
        dropped = min(next_chunk - start, buffer.shape[0])
        buffer, start = buffer[dropped:], start + dropped
    if next_chunk == 0:  # shorter than one chunk: one zero-padded chunk, as split_into_chunks gives
        yield split_into_chunks(buffer, spec, source)
