"""Chunking rule (dspl.data.chunking): counts, offsets and times for known lengths; short files padded;
whole-file mode."""

from __future__ import annotations

import logging

import pytest
import torch

from dspl.config import PREPROCESSING_KEYS, PreprocessingSettings
from dspl.data.audio import load_audio
from dspl.data.chunking import chunk_offsets, chunk_times, num_chunks, split_into_chunks
from dspl.data.example import example_hp
from dspl.errors import DsplError
from dspl.spec import PreprocessingSpec


def hp(chunk_size: float = 1.0, chunk_hop_size: float = 0.5, sample_rate: int = 16000) -> PreprocessingSpec:
    """The example configuration's preprocessing spec with another chunking (and sample rate)."""
    values = {**example_hp(), "chunk_size": chunk_size, "chunk_hop_size": chunk_hop_size, "sample_rate": sample_rate,
              "upper_edge_hertz": sample_rate / 2}
    return PreprocessingSettings(**{key: values[key] for key in PREPROCESSING_KEYS if key in values}).spec


def test_chunk_samples():
    assert (hp(1.0, 0.5).chunk_samples, hp(1.0, 0.5).hop_samples) == (16000, 8000)
    assert (hp(0.0625, 0.03125).chunk_samples, hp(0.0625, 0.03125).hop_samples) == (1000, 500)
    assert (hp(0.0, 0.5).chunk_samples, hp(0.0, 0.5).hop_samples) == (0, 0)
    assert (hp(-1.0, 0.0).chunk_samples, hp(-1.0, 0.0).hop_samples) == (0, 0)


def test_known_file_gives_known_chunks(tmp_path, write_sine):
    path = write_sine(tmp_path / "train_a.wav", seconds=2.3, sample_rate=16000)  # 36800 samples
    audio = load_audio(path, 16000)
    config = hp(1.0, 0.5)
    assert chunk_offsets(audio.shape[0], config) == [0, 8000, 16000]  # 24000 + 16000 > 36800: tail dropped
    assert chunk_times(audio.shape[0], config) == [0.0, 0.5, 1.0]
    chunks = split_into_chunks(audio, config)
    assert chunks.shape == (3, 16000)
    for k, offset in enumerate([0, 8000, 16000]):
        assert torch.equal(chunks[k], audio[offset:offset + 16000])


@pytest.mark.parametrize("samples, chunk_size, hop, expected", [
    (32000, 1.0, 0.5, [0, 8000, 16000]),  # exact fit keeps the last chunk
    (31999, 1.0, 0.5, [0, 8000]),
    (16000, 1.0, 0.5, [0]),
    (40000, 1.0, 1.5, [0, 24000]),        # hop longer than the chunk skips audio
    (48000, 1.0, 1.0, [0, 16000, 32000]),
])
def test_offsets(samples, chunk_size, hop, expected):
    config = hp(chunk_size, hop)
    assert chunk_offsets(samples, config) == expected
    assert num_chunks(samples, config) == len(expected)
    assert split_into_chunks(torch.zeros(samples), config).shape == (len(expected), int(chunk_size * 16000))


def test_short_file_is_padded_to_one_chunk_with_a_warning(caplog):
    waveform = torch.ones(12000)
    with caplog.at_level(logging.WARNING, logger="dspl.data.chunking"):
        chunks = split_into_chunks(waveform, hp(1.0, 0.5), source="short.wav")
    assert chunks.shape == (1, 16000)
    assert torch.equal(chunks[0, :12000], waveform) and torch.count_nonzero(chunks[0, 12000:]) == 0
    assert chunk_offsets(12000, hp(1.0, 0.5)) == [0]
    assert [r.getMessage() for r in caplog.records] == [
        "short.wav: 12000 samples (0.750 s) is shorter than one chunk (16000 samples): zero-padded"]


@pytest.mark.parametrize("chunk_size", [0.0, -1.0])
def test_whole_file_mode(chunk_size):
    waveform = torch.arange(12345, dtype=torch.float32)
    config = hp(chunk_size, 0.0)
    chunks = split_into_chunks(waveform, config)
    assert chunks.shape == (1, 12345) and torch.equal(chunks[0], waveform)
    assert chunk_offsets(12345, config) == [0] and chunk_times(12345, config) == [0.0]
    short = split_into_chunks(waveform[:100], config)  # shorter than one STFT window of hp(): padded to it
    assert short.shape == (1, hp(chunk_size, 0.0).frame_length)


def test_hop_of_zero_samples_is_an_error():
    with pytest.raises(DsplError, match=r"^chunk_hop_size: value 1e-05 gives 0 samples at sample_rate 16000$"):
        hp(1.0, 0.00001)
