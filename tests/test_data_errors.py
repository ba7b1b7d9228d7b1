"""Bad input: each gets one DsplError naming the file and what is expected; short files are padded, reported."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
from helpers import build_config

from dspl.config import ClassConfig
from dspl.data.audio import audio_frames, load_audio
from dspl.data.datamodule import AudioDataModule
from dspl.data.example import example_hp
from dspl.data.parsers import ComParEParser
from dspl.errors import DsplError

CLASSES = ClassConfig(("a", "b"), ("A", "B"))


def error_of(call, *args) -> str:
    with pytest.raises(DsplError) as error:
        call(*args)
    return str(error.value)


@pytest.mark.parametrize("read", [load_audio, audio_frames])
def test_missing_audio_file(tmp_path, read):
    path = tmp_path / "gone.wav"
    assert error_of(read, path, 16000) == f"{path}: audio file not found"


@pytest.mark.parametrize("content", [b"this is not audio at all", b""])
def test_corrupt_audio_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    assert error_of(load_audio, path, 16000) == (
        f"{path}: cannot decode audio (Format not recognised.), expected a WAV, FLAC or OGG file")


def test_empty_audio_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    assert error_of(load_audio, path, 16000) == f"{path}: audio file is empty (0 samples)"
    assert error_of(audio_frames, path, 16000) == f"{path}: audio file is empty (0 samples)"


def test_directory_instead_of_audio_file(tmp_path):
    assert error_of(load_audio, tmp_path, 16000) == f"{tmp_path}: is not a file, expected a WAV, FLAC or OGG file"


def test_label_file_missing(tmp_path):
    path = tmp_path / "label.csv"
    assert error_of(ComParEParser(path).parse_labels) == f"{path}: label file not found"


def test_label_csv_with_missing_columns(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a")], header="file,label")
    assert error_of(ComParEParser(path).parse_labels) == (
        f"{path}: missing column(s) filename: expected the header filename,label[,duration_frames], "
        f"found file,label")


def test_label_csv_row_with_wrong_field_count(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", 3), ("train_2.wav", "b")])
    assert error_of(ComParEParser(path).parse_labels) == (
        f"{path}: line 3: expected 3 fields (filename,label,duration_frames), found 2")


def test_label_csv_with_bad_duration(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", "long")])
    assert error_of(ComParEParser(path).parse_labels) == (
        f"{path}: line 2: duration_frames 'long' is not a non-negative integer")


def test_empty_label_file(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("\n")
    assert error_of(ComParEParser(path).parse_labels) == (
        f"{path}: label file is empty, expected a header line filename,label,duration_frames")


def data_module(tmp_path, rows, write_sine, write_labels, **hp_overrides):
    for name, *_ in rows:
        write_sine(tmp_path / "audio" / name, seconds=1.0)
    labels = write_labels(tmp_path / "label.csv", rows)
    return AudioDataModule(tmp_path / "audio", labels, build_config({**example_hp(), **hp_overrides}), CLASSES), labels


def test_unknown_class_label(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", ""), ("train_2.wav", "dog", "")],
                             write_sine, write_labels)
    assert error_of(dm.setup) == (
        f"{labels}: train_2.wav: class label 'dog' is not in the class config (known: a, b)")


def test_label_file_naming_absent_audio_files(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", "")], write_sine, write_labels)
    rows = [("train_1.wav", "a", "")] + [(f"test_{i}.wav", "b", "") for i in range(7)]
    write_labels(labels, rows)
    assert error_of(dm.setup) == (
        f"{labels}: names 7 audio file(s) absent from the data directory {tmp_path / 'audio'}: "
        f"test_0.wav, test_1.wav, test_2.wav, test_3.wav, test_4.wav (and 2 more)")


def test_missing_data_directory(tmp_path, write_labels):
    labels = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", "")])
    dm = AudioDataModule(tmp_path / "nowhere", labels, build_config(example_hp()), CLASSES)
    assert error_of(dm.setup) == f"{tmp_path / 'nowhere'}: data directory not found"


def test_missing_label_file_through_the_data_module(tmp_path):
    (tmp_path / "audio").mkdir()
    dm = AudioDataModule(tmp_path / "audio", tmp_path / "label.csv", build_config(example_hp()), CLASSES)
    assert error_of(dm.setup) == f"{tmp_path / 'label.csv'}: label file not found"


def test_corrupt_audio_named_by_the_label_file(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", "")], write_sine, write_labels)
    (tmp_path / "audio" / "train_1.wav").write_bytes(b"RIFF garbage")
    assert error_of(dm.setup).startswith(f"{tmp_path / 'audio' / 'train_1.wav'}: cannot decode audio (")


def test_empty_train_partition(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("devel_1.wav", "a", "")], write_sine, write_labels)
    assert error_of(dm.train_dataloader) == (
        f"{labels}: the train partition is empty (no file name starts with 'train')")


def test_short_file_is_padded_and_reported(tmp_path, write_sine, write_labels, caplog):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", ""), ("train_2.wav", "b", "")],
                             write_sine, write_labels, chunk_size=1.5, chunk_hop_size=0.5)
    write_sine(tmp_path / "audio" / "train_2.wav", seconds=2.0)
    with caplog.at_level(logging.WARNING, logger="dspl.data"):
        dm.setup("fit")
    assert caplog.messages == [
        f"{tmp_path / 'label.csv'}: the devel partition is empty: training runs without validation",
        "train: 1 file(s) shorter than one chunk (24000 samples) were zero-padded to it: train_1.wav"]
    assert len(dm.datasets["train"]) == 1 + 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (3, 24000)
