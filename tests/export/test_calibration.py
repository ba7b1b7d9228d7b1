"""Calibration and verification inputs (dspl.export.calibration): audio files, whole files, synthetic tones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import build_config

from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.export import calibration


def test_calibration_sources(tmp_path: Path, write_sine) -> None:
    from dspl.data.example import example_hp

    with pytest.raises(DsplError, match="no audio files"):
        find_audio_files(tmp_path)
    for i in range(3):
        write_sine(tmp_path / "sub" / f"f{i}.wav", frequency=300 * (i + 1), seconds=2.0)
    hp = build_config(example_hp()).spec
    chunks = calibration.sample_chunks(find_audio_files(tmp_path), hp, max_chunks=5)
    assert [chunk.shape for chunk in chunks] == [(16000,)] * 5
    synthetic = calibration.synthetic_chunks(hp, count=4)
    assert [chunk.shape for chunk in synthetic] == [(16000,)] * 4 and all(c.abs().amax() > 0 for c in synthetic)
    plots = calibration.make_plots(hp, synthetic)
    assert plots.shape == (4, 3, hp.image_height, hp.image_width) and 0 <= plots.min() and plots.max() <= 255


def test_a_chunked_export_calibrates_on_chunks_from_all_over_its_files(tmp_path: Path, write_sine) -> None:
    """The export passes its input length (a chunk's) along: chunks are still drawn from every position of a file,
    not only its first second (calibrating on file starts alone made int8 models unfaithful on later chunks)."""
    from dspl.data.example import example_hp

    files = [write_sine(tmp_path / f"f{i}.wav", frequency=300.25 * (i + 1), seconds=3.0) for i in range(3)]
    hp = build_config(example_hp()).spec
    chunks = calibration.sample_chunks(files, hp, max_chunks=9, num_samples=hp.chunk_samples)
    assert [chunk.shape for chunk in chunks] == [(hp.chunk_samples,)] * 9
    drawn_without_a_length = calibration.sample_chunks(files, hp, max_chunks=9)
    assert all(torch.equal(a, b) for a, b in zip(chunks, drawn_without_a_length, strict=True))
    assert len({chunk.numpy().tobytes() for chunk in chunks}) == 9


def test_whole_file_calibration_plots_each_file_from_its_own_samples(tmp_path: Path, write_sine) -> None:
    """Whole files keep their lengths (or take the export's fixed length), and each plot is its file's own."""
    from dspl.data.example import example_hp
    from dspl.features import PlotTransform

    files = [write_sine(tmp_path / f"f{i}.wav", frequency=500.0, seconds=seconds)
             for i, seconds in enumerate((0.6, 1.3))]
    hp = build_config({**example_hp(), "chunk_size": 0.0}).spec
    chunks = calibration.sample_chunks(files, hp)
    assert sorted(chunk.shape[0] for chunk in chunks) == [9600, 20800]
    plots = calibration.make_plots(hp, chunks)
    with torch.no_grad():
        alone = np.concatenate([PlotTransform(hp)(chunk[None]).numpy() for chunk in chunks])
    assert np.array_equal(plots, alone)
    fixed = calibration.sample_chunks(files, hp, num_samples=16000)
    assert [chunk.shape[0] for chunk in fixed] == [16000, 16000]
    assert calibration.longest_file_seconds(files, hp) == pytest.approx(1.3)
    synthetic = calibration.synthetic_chunks(hp, count=3)
    assert [chunk.shape[0] for chunk in synthetic] == [16000, 27200, 16000]
