"""Real inputs for quantisation and verification: chunks of training audio and their plots (PlotTransform)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dspl.config import ClassConfig, HParams
from dspl.errors import DsplError

log = logging.getLogger(__name__)

MAX_CHUNKS = 128
PLOT_BATCH = 32


def partition_files(hp: HParams, classes: ClassConfig, data_dir: str | Path, label_file: str | Path,
                    partition: str) -> list[Path]:
    """Paths of one partition (train/devel/test) of a label file, as training reads them."""
    from dspl.data.datamodule import AudioDataModule

    entries = AudioDataModule(data_dir, label_file, hp, classes).partitions[partition]
    return [entry.path for entry in entries]


def sample_chunks(files: Sequence[Path], hp: HParams, max_chunks: int = MAX_CHUNKS, seed: int = 0) -> torch.Tensor:
    """Up to max_chunks raw chunks [K, N] (before peak normalisation) drawn evenly from files in seeded order."""
    from dspl.data.audio import load_audio
    from dspl.data.chunking import split_into_chunks

    if not files:
        raise DsplError("calibration: no audio files to draw chunks from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    per_file = max(1, -(-max_chunks // len(files)))
    chunks: list[torch.Tensor] = []
    for index in order:
        pieces = split_into_chunks(load_audio(files[index], hp["sample_rate"]), hp, source=str(files[index]))
        keep = rng.permutation(len(pieces))[:per_file]
        chunks.extend(pieces[i] for i in sorted(keep))
        if len(chunks) >= max_chunks:
            break
    result = torch.stack(chunks[:max_chunks])
    log.info("drew %d chunks of %d samples from %d files", len(result), result.shape[1], len(files))
    return result


def synthetic_chunks(hp: HParams, count: int = 16, seed: int = 0) -> torch.Tensor:
    """Seeded tones with harmonics in noise at several levels [count, N]: verification inputs without data."""
    from dspl.data.chunking import chunk_samples

    length, _ = chunk_samples(hp)
    if length <= 0:
        raise DsplError(f"chunk_size: value {hp['chunk_size']}: exporting needs a fixed chunk length (> 0)")
    rng = np.random.default_rng(seed)
    t = np.arange(length) / hp["sample_rate"]
    nyquist = hp["sample_rate"] / 2
    chunks = []
    for _ in range(count):
        f0 = rng.uniform(60.0, 0.4 * nyquist)
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
                   for k in range(1, 4) if f0 * k < nyquist)
        chunks.append(rng.uniform(0.01, 0.9) * tone + rng.uniform(1e-4, 0.05) * rng.standard_normal(length))
    return torch.tensor(np.stack(chunks), dtype=torch.float32)


def make_plots(hp: HParams, chunks: torch.Tensor) -> np.ndarray:
    """Model inputs [K, C, H, W] (plots on 0..255, or raw features) of raw chunks, made by PlotTransform."""
    from dspl.features import PlotTransform

    transform = PlotTransform.from_hp(hp)
    with torch.no_grad():
        batches = [transform(chunks[i:i + PLOT_BATCH]) for i in range(0, len(chunks), PLOT_BATCH)]
    return torch.cat(batches).numpy().astype(np.float32)


def to_nhwc(inputs_nchw: np.ndarray) -> np.ndarray:
    """[K, C, H, W] -> [K, H, W, C], the TensorFlow-side layout."""
    return np.ascontiguousarray(inputs_nchw.transpose(0, 2, 3, 1))
