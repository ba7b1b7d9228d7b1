"""Audio decoding (dspl.data.audio): formats, stereo to mono, resampling (length and spectral content), header
lengths; missing, corrupt, empty, non-finite and truncated files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import error_message

from dspl.data.audio import audio_frames, load_audio, resampled_length
from dspl.errors import DsplError


def test_mono_wav_decodes_to_float32_samples(tmp_path, write_sine):
    path = write_sine(tmp_path / "a.wav", frequency=440, seconds=1.0, sample_rate=16000, amplitude=0.5)
    audio = load_audio(path, 16000)
    assert audio.dtype == torch.float32 and audio.shape == (16000,)
    expected = sf.read(path, dtype="float32")[0]
    assert torch.equal(audio, torch.from_numpy(expected))
    assert abs(audio.abs().max().item() - 0.5) < 1e-3


@pytest.mark.parametrize("suffix", [".flac", ".ogg"])
def test_flac_and_ogg_decode(tmp_path, write_sine, suffix):
    path = write_sine(tmp_path / f"a{suffix}", frequency=440, seconds=0.5, sample_rate=16000)
    audio = load_audio(path, 16000)
    assert audio.shape == (audio_frames(path, 16000),)
    assert audio.shape[0] == 8000  # libsndfile trims Vorbis' encoder padding
    assert 0.4 < audio.abs().max().item() < 0.6


def test_stereo_is_averaged_to_mono(tmp_path):
    left = np.linspace(-0.6, 0.6, 1600, dtype=np.float32)
    right = np.full(1600, 0.2, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.shape == (1600,)
    np.testing.assert_allclose(audio.numpy(), (left + right) / 2, atol=1e-7)


def test_resampling_8k_to_16k_doubles_length_and_keeps_the_frequency(tmp_path, write_sine):
    path = write_sine(tmp_path / "8k.wav", frequency=1000, seconds=1.0, sample_rate=8000, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.shape == (16000,)
    assert audio_frames(path, 16000) == 16000
    power = np.abs(np.fft.rfft(audio.numpy())) ** 2
    frequencies = np.fft.rfftfreq(16000, 1 / 16000)
    assert frequencies[np.argmax(power)] == 1000.0
    near = power[np.abs(frequencies - 1000) <= 20].sum()
    assert near / power.sum() > 0.99


@pytest.mark.parametrize("rate, frames", [(8000, 8001), (44100, 44101), (22050, 1234), (48000, 47999)])
def test_header_length_matches_decoded_length(tmp_path, rate, frames):
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(frames, dtype=np.float32), rate)
    expected = resampled_length(frames, rate, 16000)
    assert audio_frames(path, 16000) == expected == load_audio(path, 16000).shape[0]


def test_resampling_is_logged_once_per_rate_pair(tmp_path, write_sine, caplog):
    first = write_sine(tmp_path / "a.wav", seconds=0.1, sample_rate=11025)
    second = write_sine(tmp_path / "b.wav", seconds=0.2, sample_rate=11025)
    with caplog.at_level(logging.INFO, logger="dspl.data.audio"):
        load_audio(first, 16000)
        load_audio(second, 16000)
    messages = [r.getMessage() for r in caplog.records if r.name == "dspl.data.audio"]
    assert messages == ["resampling audio from 11025 Hz to 16000 Hz (sample_rate of the config)"]


# --- bad audio: one DsplError naming the file and what is expected --------------------------------------------
@pytest.mark.parametrize("read", [load_audio, audio_frames])
def test_missing_audio_file(tmp_path, read):
    path = tmp_path / "gone.wav"
    assert error_message(read, path, 16000) == f"{path}: audio file not found"


@pytest.mark.parametrize("content", [b"this is not audio at all", b""])
def test_corrupt_audio_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    assert error_message(load_audio, path, 16000) == (
        f"{path}: cannot decode audio (Format not recognised.), expected a WAV, FLAC or OGG file")


def test_empty_audio_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert error_message(load_audio, path, 16000) == f"{path}: audio file is empty (0 samples)"
    assert error_message(audio_frames, path, 16000) == f"{path}: audio file is empty (0 samples)"


def test_directory_instead_of_audio_file(tmp_path):
    assert error_message(load_audio, tmp_path, 16000) == f"{tmp_path}: is not a file, expected a WAV, FLAC or OGG file"


def test_audio_with_nan_or_infinite_samples_is_refused(tmp_path):
    from dspl.data.audio import load_audio, stream_audio

    samples = np.zeros(16000, dtype=np.float32)
    samples[[10, 20, 30]] = [np.nan, np.inf, -np.inf]
    sf.write(tmp_path / "bad.wav", samples, 16000, subtype="FLOAT")
    message = f"{tmp_path / 'bad.wav'}: 3 sample(s) are NaN or infinite, expected finite audio"
    for read in (lambda p: load_audio(p, 16000), lambda p: list(stream_audio(p, 16000))):
        with pytest.raises(DsplError) as error:
            read(tmp_path / "bad.wav")
        assert str(error.value) == message


def test_a_truncated_wav_says_so(tmp_path, write_sine, caplog):
    from dspl.data.audio import load_audio

    full = write_sine(tmp_path / "full.wav", seconds=1.0, subtype="PCM_16").read_bytes()
    (tmp_path / "cut.wav").write_bytes(full[:44 + 10000])
    with caplog.at_level(logging.WARNING, logger="dspl.data.audio"):
        assert load_audio(tmp_path / "cut.wav", 16000).shape == (5000,)
    assert caplog.messages == [f"{tmp_path / 'cut.wav'}: WAV file is truncated: its header declares 32000 bytes of "
                               "audio, the file holds 10000; using the audio that is there"]


def test_a_named_pipe_in_a_scanned_folder_is_skipped_and_named(tmp_path, write_sine, caplog):
    """Opening a FIFO waits for a writer: a folder scan passes it by, and says so."""
    import os

    from dspl.data.audio import find_audio_files

    write_sine(tmp_path / "audio" / "a.wav")
    os.mkfifo(tmp_path / "audio" / "b.wav")
    (tmp_path / "audio" / "folder.wav").mkdir()
    for scanned in (tmp_path / "audio", tmp_path / "audio" / "*.wav"):  # a folder, or a glob as predict takes
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dspl.data.audio"):
            assert find_audio_files(scanned) == [tmp_path / "audio" / "a.wav"]
        assert [r.getMessage() for r in caplog.records] == [f"{tmp_path / 'audio' / 'b.wav'}: skipped: not a "
                                                            "regular file"]
