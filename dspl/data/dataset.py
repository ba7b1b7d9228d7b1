"""A torch Dataset of audio chunks over a list of files, with an in-memory cache of decoded audio."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset, default_collate

from dspl.data.audio import audio_frames, load_audio
from dspl.data.chunking import chunk_offsets, extract_chunk, is_short, min_samples
from dspl.spec import PreprocessingSpec

logger = logging.getLogger(__name__)


def upsample_indices(targets: Sequence[int], num_classes: int) -> list[int]:
    """Indices into `targets` that repeat each minority class's files in order until all classes are as
    large as the largest (DeepSpectrumLite's class up-sampling of the training partition); deterministic."""
    members: list[list[int]] = [[] for _ in range(num_classes)]
    for index, target in enumerate(targets):
        members[target].append(index)
    largest = max((len(m) for m in members), default=0)
    indices = list(range(len(targets)))
    for files in members:
        if files:
            indices.extend(files[k % len(files)] for k in range(largest - len(files)))
    return indices


def class_counts(targets: Sequence[int], num_classes: int) -> list[int]:
    """Number of files of each class index."""
    counts = Counter(targets)
    return [counts.get(c, 0) for c in range(num_classes)]


class ChunkDataset(Dataset):
    """Chunks of a list of audio files; item = {"audio" [N] raw float32, "target", "file_index", "chunk_index"}.

    `file_indices[k]` is reported as the file index of `paths[k]` (default k), so repeated (up-sampled) files
    point back to one entry. Without `targets` items have no "target"; ``regression`` targets are floats, others
    class indices. In whole-file mode (chunk_size <= 0)
    an item is the whole file (padded only up to one STFT window); `collate_chunks` batches such items of
    different lengths. Decoded audio is kept in memory when `cache` is true, so later epochs decode nothing.
    """

    def __init__(self, paths: Sequence[str | Path], spec: PreprocessingSpec,
                 targets: Sequence[int] | Sequence[float] | None = None, *, regression: bool = False,
                 file_indices: Sequence[int] | None = None, cache: bool = True):
        self.paths = [Path(p) for p in paths]
        self.sample_rate = spec.sample_rate
        self.targets = None if targets is None else list(targets)
        self.file_indices = list(range(len(self.paths))) if file_indices is None else list(file_indices)
        self.regression = regression
        self.cache_enabled = cache
        self._cache: dict[Path, torch.Tensor] = {}
        frames = {p: audio_frames(p, self.sample_rate) for p in dict.fromkeys(self.paths)}
        self.chunk_length = spec.chunk_samples
        self.min_length = min_samples(spec)
        self.short_files = [p for p in frames if is_short(frames[p], spec)]
        self.items: list[tuple[int, int, int]] = [
            (k, index, offset)
            for k, path in enumerate(self.paths)
            for index, offset in enumerate(chunk_offsets(frames[path], spec))
        ]

    def __len__(self) -> int:
        return len(self.items)

    def waveform(self, path: Path) -> torch.Tensor:
        """The decoded, resampled audio of a file, from the cache when it is there."""
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        waveform = load_audio(path, self.sample_rate)
        if self.cache_enabled:
            self._cache[path] = waveform
        return waveform

    def preload(self) -> None:
        """Decode every file into the cache now (errors surface before training; workers share it)."""
        if not self.cache_enabled:
            return
        from rich.console import Console
        from rich.progress import track

        todo = [p for p in dict.fromkeys(self.paths) if p not in self._cache]
        console = Console(stderr=True)
        quiet = not todo or not console.is_terminal or not logger.isEnabledFor(logging.INFO)
        for path in track(todo, description="Decoding audio", transient=True, console=console, disable=quiet):
            self.waveform(path)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        k, chunk_index, offset = self.items[index]
        waveform = self.waveform(self.paths[k])
        item = {
            "audio": extract_chunk(waveform, offset, self.chunk_length or max(len(waveform), self.min_length)),
            "file_index": torch.tensor(self.file_indices[k], dtype=torch.int64),
            "chunk_index": torch.tensor(chunk_index, dtype=torch.int64),
        }
        if self.targets is not None:
            dtype = torch.float32 if self.regression else torch.int64
            item["target"] = torch.tensor(self.targets[k], dtype=dtype)
        return item


def collate_chunks(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack items into a batch; audio of different lengths (whole files) is zero-padded to the longest and
    "length" holds each row's own number of samples, so its plot can be made from those alone."""
    lengths = [item["audio"].shape[0] for item in items]
    batch = default_collate([{k: v for k, v in item.items() if k != "audio"} for item in items])
    if len(set(lengths)) == 1:
        batch["audio"] = torch.stack([item["audio"] for item in items])
        return batch
    audio = torch.zeros(len(items), max(lengths))
    for row, item in enumerate(items):
        audio[row, :lengths[row]] = item["audio"]
    batch["audio"], batch["length"] = audio, torch.tensor(lengths)
    return batch
