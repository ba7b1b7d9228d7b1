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


# --- resampling between rates that share no factor: bounded memory, exact duration and pitch -----------------
USUAL_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000, 192000)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency of a signal, to a small fraction of an FFT bin (Hann window, parabola through the
    peak's log magnitudes)."""
    magnitude = np.log(np.abs(np.fft.rfft(samples * np.hanning(samples.shape[0]))) + 1e-12)
    peak = int(np.argmax(magnitude))
    left, centre, right = magnitude[peak - 1:peak + 2]
    return (peak + 0.5 * (left - right) / (left - 2 * centre + right)) * rate / samples.shape[0]


@pytest.fixture
def resampler_sizes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The number of values of every torchaudio resampling kernel and of every weight array of the direct
    resampler built while the test runs. A torchaudio kernel of more than MAX_KERNEL values fails the test
    before it is allocated (the one for 44 101 Hz to 16 kHz would take gigabytes)."""
    import torchaudio.functional.functional as torchaudio_functional

    from dspl.data import audio

    sizes: dict[str, list[int]] = {"kernel": [], "weights": []}
    build_kernel, weights = torchaudio_functional._get_sinc_resample_kernel, audio._DirectResampler.weights

    def kernel(orig_freq: int, new_freq: int, gcd: int, *args, **kwargs):
        assert orig_freq // gcd * (new_freq // gcd) <= audio.MAX_KERNEL, f"a kernel for {orig_freq} -> {new_freq}"
        built = build_kernel(orig_freq, new_freq, gcd, *args, **kwargs)
        sizes["kernel"].append(built[0].numel())
        return built

    def recorded_weights(self, offsets: torch.Tensor) -> torch.Tensor:
        sizes["weights"].append(offsets.numel())
        return weights(self, offsets)

    monkeypatch.setattr(torchaudio_functional, "_get_sinc_resample_kernel", kernel)
    monkeypatch.setattr(audio._DirectResampler, "weights", recorded_weights)
    return sizes


@pytest.mark.parametrize("rate, frequency", [(44101, 1000.0), (767999, 1000.0), (1009, 200.0)])
def test_a_file_at_an_odd_rate_keeps_its_duration_and_pitch_in_bounded_memory(tmp_path, write_sine, resampler_sizes,
                                                                              rate, frequency):
    """Rates that share no factor with 16 kHz (the audit's 44 101 Hz took 12.5 GB) are resampled a bounded
    number of values at a time, at the exact ratio."""
    from dspl.data.audio import MAX_WORK, stream_audio

    path = write_sine(tmp_path / "odd.wav", frequency=frequency, seconds=0.5, sample_rate=rate, subtype="FLOAT")
    audio = load_audio(path, 16000)
    frames = sf.info(path).frames
    assert audio.shape == (resampled_length(frames, rate, 16000),) == (audio_frames(path, 16000),)
    assert abs(audio.shape[0] / 16000 - frames / rate) < 1 / 16000
    assert abs(dominant_frequency(audio.numpy(), 16000) / frequency - 1) < 1e-3
    streamed = torch.cat(list(stream_audio(path, 16000, block_frames=rate // 7)))
    torch.testing.assert_close(streamed, audio, atol=1e-6, rtol=0)
    assert resampler_sizes["kernel"] == [] and 0 < max(resampler_sizes["weights"]) <= MAX_WORK


def test_the_audits_noise_file_is_decoded_without_a_kernel(tmp_path, resampler_sizes):
    from dspl.data.audio import MAX_WORK

    path = tmp_path / "prime.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 40000), 44101)
    assert load_audio(path, 16000).shape == (resampled_length(40000, 44101, 16000),) == (14513,)
    assert resampler_sizes["kernel"] == [] and 0 < max(resampler_sizes["weights"]) <= MAX_WORK


@pytest.mark.parametrize("target", [8000, 16000, 22050, 44100, 48000])
def test_usual_rates_keep_torchaudios_result_bit_for_bit(tmp_path, resampler_sizes, target):
    """DeepSpectrumLite parity depends on torchaudio's exact samples for the rates recordings come at."""
    import torchaudio.functional as F

    from dspl.data.audio import MAX_KERNEL, _PolyphaseResampler, _resampler

    for rate in USUAL_RATES:
        assert isinstance(_resampler(rate, target), _PolyphaseResampler), (rate, target)
    samples = np.random.default_rng(target).uniform(-0.5, 0.5, 11025).astype(np.float32)
    sf.write(tmp_path / "a.wav", samples, 11025, subtype="FLOAT")
    assert torch.equal(load_audio(tmp_path / "a.wav", target), F.resample(torch.from_numpy(samples), 11025, target))
    assert max(resampler_sizes["kernel"]) <= MAX_KERNEL and resampler_sizes["weights"] == []


@pytest.mark.parametrize("rate, target", [(44100, 16000), (16000, 44100), (11025, 16000), (48000, 8000)])
def test_the_direct_resampler_is_torchaudios_interpolation(monkeypatch, rate, target):
    """Where both run they agree (to torchaudio's float32 rounding of its kernel's phases); so do the outputs
    computed from a block inside the file, in the smallest steps: one output sample and 7 of its taps at a time."""
    import torchaudio.functional as F

    from dspl.data import audio

    samples = torch.from_numpy(np.random.default_rng(rate).uniform(-0.5, 0.5, 3001).astype(np.float32))
    length = resampled_length(samples.shape[0], rate, target)
    direct = audio._DirectResampler(rate, target)(samples, 0, 0, length)
    torch.testing.assert_close(direct, F.resample(samples, rate, target), atol=5e-5, rtol=0)
    monkeypatch.setattr(audio, "MAX_WORK", 7)
    small_steps = audio._DirectResampler(rate, target)
    first, end = 1000, 1000 + 2 * small_steps.context + 100
    start, stop = (resampled_length(first + small_steps.context, rate, target),
                   resampled_length(end - small_steps.context, rate, target))
    assert small_steps.rows == 1 and stop - start >= 10
    torch.testing.assert_close(small_steps(samples[first:end], first, start, stop), direct[start:stop], atol=1e-6,
                               rtol=0)


@pytest.mark.parametrize("rate", [999983, 768001, 999, 8])
def test_an_absurd_file_rate_is_refused_with_one_line(tmp_path, rate):
    from dspl.data.audio import stream_audio

    path = tmp_path / "absurd.wav"
    sf.write(path, np.zeros(100, dtype=np.float32), rate)
    expected = f"{path}: sample rate {rate} Hz is out of range, expected 1000 to 768000 Hz"
    for read in (load_audio, audio_frames, lambda p, r: list(stream_audio(p, r))):
        assert error_message(read, path, 16000) == expected
