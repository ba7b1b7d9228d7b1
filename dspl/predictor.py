"""Using a trained model from Python: `load_model(path).predict(path_or_waveform)`, batched over files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dspl.config import ClassConfig, HParams
from dspl.data.audio import load_audio
from dspl.data.chunking import chunk_samples, chunk_times, split_into_chunks
from dspl.features import PlotTransform
from dspl.models.modelfile import LoadedModel, load_model_file


@dataclass
class FilePrediction:
    """Scores of every chunk of one file and the file-level result (mean scores over chunks)."""

    source: str
    times: list[float]
    chunk_scores: np.ndarray
    scores: np.ndarray
    decision: str | float
    chunk_decisions: list[str | float]


class Predictor:
    """A loaded model with its preprocessing: raw audio in, scores out, in eval mode and without gradients."""

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        self.hp: HParams = loaded.hp
        self.classes: ClassConfig = loaded.classes
        self.device = torch.device(device)
        self.batch_size = batch_size
        features = loaded.features if loaded.features is not None else PlotTransform.from_hp(self.hp)
        self.features = features.to(self.device).eval()
        self.model = loaded.model.to(self.device).eval()

    @property
    def categorical(self) -> bool:
        return self.hp["prediction_type"] == "categorical"

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
        return torch.cat(out).numpy()

    def _result(self, source: str, num_samples: int, chunk_scores: np.ndarray) -> FilePrediction:
        times = chunk_times(num_samples, self.hp)
        scores = chunk_scores.mean(axis=0)
        return FilePrediction(source, times, chunk_scores, scores, self.decide(scores),
                              [self.decide(row) for row in chunk_scores])

    def predict(self, audio: str | Path | np.ndarray | torch.Tensor) -> FilePrediction:
        """Predict one file (a path) or one mono waveform at the model's sample rate."""
        if isinstance(audio, (str, Path)):
            waveform, source = load_audio(audio, self.hp["sample_rate"]), str(audio)
        else:
            waveform, source = torch.as_tensor(audio, dtype=torch.float32).reshape(-1), "<waveform>"
        chunks = split_into_chunks(waveform, self.hp, source)
        return self._result(source, waveform.shape[0], self.score_chunks(chunks))

    def predict_files(self, paths: Iterable[str | Path]) -> Iterator[FilePrediction]:
        """Predict many files in order, packing chunks of consecutive files into full batches."""
        if chunk_samples(self.hp)[0] == 0:  # whole files differ in length: one file per forward pass
            yield from (self.predict(path) for path in paths)
            return
        pending: list[tuple[str, int, int]] = []  # (source, samples, chunks) waiting for their scores
        chunks: list[torch.Tensor] = []
        queued = 0
        for path in paths:
            waveform = load_audio(path, self.hp["sample_rate"])
            file_chunks = split_into_chunks(waveform, self.hp, str(path))
            pending.append((str(path), waveform.shape[0], file_chunks.shape[0]))
            chunks.append(file_chunks)
            queued += file_chunks.shape[0]
            if queued >= self.batch_size:
                yield from self._flush(pending, chunks)
                queued = 0
        yield from self._flush(pending, chunks)

    def _flush(self, pending: list[tuple[str, int, int]], chunks: list[torch.Tensor]) -> Iterator[FilePrediction]:
        if not pending:
            return
        scores = self.score_chunks(torch.cat(chunks))
        start = 0
        for source, samples, count in pending:
            yield self._result(source, samples, scores[start:start + count])
            start += count
        pending.clear()
        chunks.clear()


def load_model(path: str | Path, device: str | torch.device = "cpu", batch_size: int = 64,
               hp_config: str | Path | None = None, class_config: str | Path | None = None) -> Predictor:
    """Load a model file for prediction: a dspl `model.h5` or Lightning `.ckpt` needs no config files; a
    DeepSpectrumLite Keras `model.h5` needs the hyper-parameter and class configs it was trained with."""
    return Predictor(load_model_file(path, hp_config, class_config), device=device, batch_size=batch_size)
