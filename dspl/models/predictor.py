"""Scoring audio with a loaded model: `Predictor(loaded).predict(path_or_waveform)`, batched over files.

`dspl.load_model(path)` (dspl.loading) returns a Predictor for any model file dspl reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dspl.config import ClassConfig, RunConfig
from dspl.data.audio import load_audio, stream_audio
from dspl.data.chunking import chunk_times, split_into_chunks, stream_chunks
from dspl.errors import DsplError
from dspl.models.loaded import LoadedModel
from dspl.spec import PreprocessingSpec


@dataclass
class FilePrediction:
    """Scores of every chunk of one file and the file-level result (mean scores over chunks)."""

    source: str
    times: list[float]
    chunk_scores: np.ndarray
    scores: np.ndarray
    decision: str | float
    chunk_decisions: list[str | float]


@dataclass(eq=False)
class _PendingFile:
    """A file whose chunks stream through the scorer: its samples so far and the scores of its chunks so far."""

    source: str
    samples: int = 0
    unscored: int = 0
    scores: list[np.ndarray] = field(default_factory=list)
    decoded: bool = False


class Predictor:
    """A loaded model with its preprocessing: raw audio in, scores out, in eval mode and without gradients."""

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        self.loaded = loaded
        self.config: RunConfig = loaded.config
        self.classes: ClassConfig = loaded.classes
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.features = loaded.features.to(self.device).eval()
        self.model = loaded.model.to(self.device).eval()

    @property
    def categorical(self) -> bool:
        return self.config.categorical

    @property
    def spec(self) -> PreprocessingSpec:
        """The preprocessing spec of the model's configuration."""
        return self.config.spec

    def decide(self, scores: np.ndarray) -> str | float:
        """The class label with the highest score, or the predicted value (regression)."""
        return self.classes.labels[int(np.argmax(scores))] if self.categorical else float(scores[0])

    @torch.no_grad()
    def score_chunks(self, chunks: torch.Tensor) -> np.ndarray:
        """Scores [C, K] for raw chunks [C, N] (before peak normalisation), in batches of batch_size."""
        out = []
        for start in range(0, chunks.shape[0], self.batch_size):
            batch = chunks[start:start + self.batch_size].to(self.device, torch.float32)
            out.append(self.model(self.features(batch)).float().cpu())
        scores = torch.cat(out)
        broken = int((~scores.isfinite().all(dim=1)).sum())
        if broken:
            raise DsplError(f"{self.loaded.source or 'the model'}: gave NaN or infinite scores for {broken} of "
                            f"{scores.shape[0]} chunk(s), expected finite scores: its weights or its layers "
                            "overflow; check the model (or train it again)")
        return scores.numpy()

    def _result(self, source: str, num_samples: int, chunk_scores: np.ndarray) -> FilePrediction:
        times = chunk_times(num_samples, self.spec)
        scores = chunk_scores.mean(axis=0)
        return FilePrediction(source, times, chunk_scores, scores, self.decide(scores),
                              [self.decide(row) for row in chunk_scores])

    def predict(self, audio: str | Path | np.ndarray | torch.Tensor) -> FilePrediction:
        """Predict one file (a path, streamed) or one mono waveform at the model's sample rate."""
        if isinstance(audio, (str, Path)):
            return next(self.predict_files([audio]))
        waveform = torch.as_tensor(audio, dtype=torch.float32).reshape(-1)
        return self._result("<waveform>", waveform.shape[0],
                            self.score_chunks(split_into_chunks(waveform, self.spec)))

    def predict_files(self, paths: Iterable[str | Path], skipped: list[str] | None = None) -> Iterator[FilePrediction]:
        """Predict many files in order, packing chunks of consecutive files into full batches.

        Files are decoded in blocks and their chunks scored as they come, so memory does not grow with a file's
        length (whole-file configurations, chunk_size <= 0, decode each file at once). A file that cannot be
        decoded raises its DsplError, or with ``skipped`` given is left out and its message appended there.
        """
        if self.spec.whole_file:  # whole files differ in length: one file per forward pass
            for path in paths:
                try:
                    waveform = load_audio(path, self.spec.sample_rate)
                except DsplError as exc:
                    if skipped is None:
                        raise
                    skipped.append(str(exc))
                    continue
                yield self._result(str(path), waveform.shape[0],
                                   self.score_chunks(split_into_chunks(waveform, self.spec, str(path))))
            return
        files: deque[_PendingFile] = deque()
        queue: list[tuple[_PendingFile, torch.Tensor]] = []
        for path in paths:
            entry = _PendingFile(str(path))
            files.append(entry)
            try:
                for chunks in stream_chunks(self._counted(entry, path), self.spec, entry.source):
                    queue.append((entry, chunks))
                    entry.unscored += chunks.shape[0]
                    self._score_queue(queue, full_batches_only=True)
            except DsplError as exc:
                if skipped is None:
                    raise
                skipped.append(str(exc))
                files.remove(entry)
                queue[:] = [(owner, chunks) for owner, chunks in queue if owner is not entry]
                continue
            entry.decoded = True
            yield from self._finished(files)
        self._score_queue(queue)
        yield from self._finished(files)

    def _counted(self, entry: _PendingFile, path: str | Path) -> Iterator[torch.Tensor]:
        """The file's blocks at the model's sample rate, counting its samples into ``entry``."""
        for block in stream_audio(path, self.spec.sample_rate):
            entry.samples += block.shape[0]
            yield block

    def _score_queue(self, queue: list[tuple[_PendingFile, torch.Tensor]], full_batches_only: bool = False) -> None:
        """Score the queued chunks and hand each file its rows: all of them, or as many as fill whole batches (the
        rest, of one file or the next, waits for more), so that forward passes are full."""
        queued = sum(chunks.shape[0] for _, chunks in queue)
        count = queued // self.batch_size * self.batch_size if full_batches_only else queued
        if count == 0:
            return
        taken: list[tuple[_PendingFile, torch.Tensor]] = []
        room = count
        while room:
            owner, chunks = queue.pop(0)
            if chunks.shape[0] > room:
                queue.insert(0, (owner, chunks[room:]))
                chunks = chunks[:room]
            taken.append((owner, chunks))
            room -= chunks.shape[0]
        scores = self.score_chunks(torch.cat([chunks for _, chunks in taken]))
        start = 0
        for owner, chunks in taken:
            owner.scores.append(scores[start:start + chunks.shape[0]])
            owner.unscored -= chunks.shape[0]
            start += chunks.shape[0]

    def _finished(self, files: deque[_PendingFile]) -> Iterator[FilePrediction]:
        """Results of the leading files that are decoded and scored completely, in order."""
        while files and files[0].decoded and files[0].unscored == 0:
            entry = files.popleft()
            yield self._result(entry.source, entry.samples, np.concatenate(entry.scores))
