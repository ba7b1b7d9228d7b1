"""Real inputs for quantisation and verification: chunks of training audio and their plots (PlotTransform)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dspl.config import ClassConfig, RunConfig
from dspl.data.audio import audio_frames, load_audio
from dspl.data.chunking import extract_chunk, split_into_chunks
from dspl.data.dataset import collate_chunks
from dspl.data.parsers import PARTITIONS, check_files_exist, encode_targets, parse_label_file
from dspl.errors import DsplError
from dspl.features import PlotTransform
from dspl.spec import PreprocessingSpec

log = logging.getLogger(__name__)

MAX_CHUNKS = 128
PLOT_BATCH = 32


def partition_files(config: RunConfig, classes: ClassConfig, data_dir: str | Path, label_file: str | Path,
                    partition: str) -> list[Path]:
    """Paths of one partition (train/devel/test) of a label file, read with the configuration's label parser
    and checked as training checks them."""
    data_dir, label_file = Path(data_dir), Path(label_file)
    entries = parse_label_file(label_file, config.label_parser)[PARTITIONS.index(partition)]
    check_files_exist(entries, data_dir, label_file)
    encode_targets(entries, classes, config.categorical, label_file)  # an unknown label is an error here too
    return [data_dir / entry.path for entry in entries]


def longest_file_seconds(files: Sequence[Path], spec: PreprocessingSpec) -> float:
    """Duration of the longest of the files at the model's sample rate (read from the headers)."""
    if not files:
        raise DsplError("calibration: no audio files to measure")
    return spec.seconds(max(audio_frames(path, spec.sample_rate) for path in files))


def sample_chunks(files: Sequence[Path], spec: PreprocessingSpec, max_chunks: int = MAX_CHUNKS, seed: int = 0,
                  num_samples: int | None = None) -> list[torch.Tensor]:
    """Up to max_chunks raw chunks (before peak normalisation) drawn evenly from files in seeded order.

    Chunked configurations cut every file into their chunks and draw from all of them, not only each file's
    first. Whole-file configurations give each file's own samples, or with ``num_samples`` its first num_samples
    (zero-padded when shorter): the fixed input length of a whole-file export (a chunked export's input length is
    its chunk length, which the chunks already have).
    """
    if not files:
        raise DsplError("calibration: no audio files to draw chunks from")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    per_file = max(1, -(-max_chunks // len(files)))
    chunks: list[torch.Tensor] = []
    for index in order:
        waveform = load_audio(files[index], spec.sample_rate)
        if num_samples and spec.whole_file:
            pieces = extract_chunk(waveform, 0, num_samples).unsqueeze(0)
        else:
            pieces = split_into_chunks(waveform, spec, source=str(files[index]))
        keep = rng.permutation(len(pieces))[:per_file]
        chunks.extend(pieces[i] for i in sorted(keep))
        if len(chunks) >= max_chunks:
            break
    chunks = chunks[:max_chunks]
    lengths = sorted({len(c) for c in chunks})
    log.info("drew %d chunks of %s samples from %d files", len(chunks),
             lengths[0] if len(lengths) == 1 else f"{lengths[0]} to {lengths[-1]}", len(files))
    return chunks


def synthetic_chunks(spec: PreprocessingSpec, count: int = 16, seed: int = 0,
                     num_samples: int | None = None) -> list[torch.Tensor]:
    """Seeded tones with harmonics in noise at several levels: verification inputs without data.

    Chunks are ``num_samples`` long, else one chunk long; whole files without a length alternate 1 s and 1.7 s.
    """
    fixed = num_samples or spec.chunk_samples
    rng = np.random.default_rng(seed)
    nyquist = spec.sample_rate / 2
    chunks = []
    for i in range(count):
        length = fixed or int((1.0, 1.7)[i % 2] * spec.sample_rate)
        t = np.arange(length) / spec.sample_rate
        f0 = rng.uniform(60.0, 0.4 * nyquist)
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
                   for k in range(1, 4) if f0 * k < nyquist)
        signal = rng.uniform(0.01, 0.9) * tone + rng.uniform(1e-4, 0.05) * rng.standard_normal(length)
        chunks.append(torch.tensor(signal, dtype=torch.float32))
    return chunks


def make_plots(spec: PreprocessingSpec, chunks: Sequence[torch.Tensor]) -> np.ndarray:
    """Model inputs [K, C, H, W] (plots on 0..255, or raw features) of raw chunks, each from its own samples."""
    transform = PlotTransform(spec)
    plots = []
    with torch.no_grad():
        for start in range(0, len(chunks), PLOT_BATCH):
            batch = collate_chunks([{"audio": chunk} for chunk in chunks[start:start + PLOT_BATCH]])
            plots.append(transform(batch["audio"], batch.get("length")))
    return torch.cat(plots).numpy().astype(np.float32)


def to_nhwc(inputs_nchw: np.ndarray) -> np.ndarray:
    """[K, C, H, W] -> [K, H, W, C], the TensorFlow-side layout."""
    return np.ascontiguousarray(inputs_nchw.transpose(0, 2, 3, 1))
