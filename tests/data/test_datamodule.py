"""The data module (dspl.data.datamodule): class up-sampling, seeded shuffling, file order; errors in the data
folder and label file, short files padded and reported, warnings about classes and partitions."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from helpers import build_config, error_message, example_config, tiny_config

from dspl.config import ClassConfig
from dspl.data.datamodule import AudioDataModule
from dspl.data.dataset import class_counts
from dspl.data.example import example_hp

CLASSES = ClassConfig(("a", "b", "c"), ("A", "B", "C"))


def make_imbalanced(tmp_path, write_sine, write_labels):
    rows = [(f"train_a{i}.wav", "a", "") for i in range(4)] + [("train_b0.wav", "b", "")] + \
        [(f"train_c{i}.wav", "c", "") for i in range(2)] + [("devel_0.wav", "a", ""), ("test_0.wav", "b", "")]
    for name, _, _ in rows:
        write_sine(tmp_path / "audio" / name, seconds=1.0)
    return write_labels(tmp_path / "label.csv", rows)


def test_data_module_up_samples_the_training_partition(tmp_path, write_sine, write_labels, caplog):
    labels = make_imbalanced(tmp_path, write_sine, write_labels)
    dm = AudioDataModule(tmp_path / "audio", labels, example_config(), CLASSES)
    with caplog.at_level(logging.INFO, logger="dspl.data.datamodule"):
        dm.setup("fit")
    assert "class up-sampling of train: a 4 -> 4, b 1 -> 4, c 2 -> 4" in caplog.messages
    assert "train: 12 files, 12 chunks" in caplog.messages and "devel: 1 files, 1 chunks" in caplog.messages
    assert len(dm.partitions["train"]) == 7 and "test" not in dm.datasets
    file_indices = sorted(int(dm.datasets["train"][i]["file_index"]) for i in range(12))
    assert file_indices == [0, 1, 2, 3, 4, 4, 4, 4, 5, 5, 6, 6]
    assert class_counts([int(dm.datasets["train"][i]["target"]) for i in range(12)], 3) == [4, 4, 4]


def test_regression_is_not_up_sampled(tmp_path, write_sine, write_labels):
    rows = [("train_0.wav", "0.1", ""), ("train_1.wav", "0.9", "")]
    for name, _, _ in rows:
        write_sine(tmp_path / "audio" / name)
    labels = write_labels(tmp_path / "label.csv", rows)
    dm = AudioDataModule(tmp_path / "audio", labels, example_config(prediction_type="regression"),
                         ClassConfig(("r",), ("R",)))
    batch = next(iter(dm.train_dataloader()))
    assert len(dm.datasets["train"]) == 2 and batch["target"].dtype == torch.float32
    assert sorted(batch["target"].tolist()) == pytest.approx([0.1, 0.9])


def test_train_loader_is_shuffled_by_the_seed(tmp_path, write_sine, write_labels):
    labels = make_imbalanced(tmp_path, write_sine, write_labels)

    def order(seed: int) -> list[int]:
        dm = AudioDataModule(tmp_path / "audio", labels, example_config(seed=seed, batch_size=4), CLASSES)
        return [int(i) for batch in dm.train_dataloader() for i in batch["file_index"]]

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == [0, 1, 2, 3, 4, 4, 4, 4, 5, 5, 6, 6]


def test_devel_and_test_loaders_keep_file_order(tmp_path, write_sine, write_labels):
    rows = [("devel_1.wav", "a", ""), ("devel_0.wav", "b", ""), ("test_0.wav", "c", ""), ("train_0.wav", "a", "")]
    for name, _, _ in rows:
        write_sine(tmp_path / "audio" / name, seconds=2.0)
    labels = write_labels(tmp_path / "label.csv", rows)
    dm = AudioDataModule(tmp_path / "audio", labels, example_config(batch_size=16), CLASSES, cache=False)
    batch = next(iter(dm.val_dataloader()))
    assert batch["file_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert batch["chunk_index"].tolist() == [0, 1, 2, 0, 1, 2]
    assert batch["target"].tolist() == [0, 0, 0, 1, 1, 1]
    assert [e.path.name for e in dm.partitions["devel"]] == ["devel_1.wav", "devel_0.wav"]
    assert [e.duration_frames for e in dm.partitions["devel"]] == [32000, 32000]  # absent: read from the header
    assert next(iter(dm.test_dataloader()))["target"].tolist() == [2, 2, 2]


# --- bad input: one DsplError naming the file and what is expected --------------------------------------------
TWO_CLASSES = ClassConfig(("a", "b"), ("A", "B"))


def data_module(tmp_path, rows, write_sine, write_labels, **hp_overrides):
    for name, *_ in rows:
        write_sine(tmp_path / "audio" / name, seconds=1.0)
    labels = write_labels(tmp_path / "label.csv", rows)
    config = build_config({**example_hp(), **hp_overrides})
    return AudioDataModule(tmp_path / "audio", labels, config, TWO_CLASSES), labels


def test_unknown_class_label(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", ""), ("train_2.wav", "dog", "")],
                             write_sine, write_labels)
    assert error_message(dm.setup) == (
        f"{labels}: train_2.wav: class label 'dog' is not in the class config (known: a, b)")


def test_label_file_naming_absent_audio_files(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", "")], write_sine, write_labels)
    rows = [("train_1.wav", "a", "")] + [(f"test_{i}.wav", "b", "") for i in range(7)]
    write_labels(labels, rows)
    assert error_message(dm.setup) == (
        f"{labels}: names 7 audio file(s) absent from the data directory {tmp_path / 'audio'}: "
        f"test_0.wav, test_1.wav, test_2.wav, test_3.wav, test_4.wav (and 2 more)")


def test_missing_data_directory(tmp_path, write_labels):
    labels = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", "")])
    dm = AudioDataModule(tmp_path / "nowhere", labels, build_config(example_hp()), TWO_CLASSES)
    assert error_message(dm.setup) == f"{tmp_path / 'nowhere'}: data directory not found"


def test_missing_label_file_through_the_data_module(tmp_path):
    (tmp_path / "audio").mkdir()
    dm = AudioDataModule(tmp_path / "audio", tmp_path / "label.csv", build_config(example_hp()), TWO_CLASSES)
    assert error_message(dm.setup) == f"{tmp_path / 'label.csv'}: label file not found"


def test_corrupt_audio_named_by_the_label_file(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("train_1.wav", "a", "")], write_sine, write_labels)
    (tmp_path / "audio" / "train_1.wav").write_bytes(b"RIFF garbage")
    assert error_message(dm.setup).startswith(f"{tmp_path / 'audio' / 'train_1.wav'}: cannot decode audio (")


def test_empty_train_partition(tmp_path, write_sine, write_labels):
    dm, labels = data_module(tmp_path, [("devel_1.wav", "a", "")], write_sine, write_labels)
    assert error_message(dm.train_dataloader) == (
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


def test_duplicate_class_names_and_a_missing_devel_partition_are_warned(tmp_path, write_sine, write_labels, caplog):
    from dspl.config import load_class_config
    from dspl.data.datamodule import AudioDataModule

    config = tmp_path / "classes.json"
    config.write_text(json.dumps({"low": "Tone", "high": "Tone", "noise": "Noise"}))
    write_sine(tmp_path / "audio" / "train_a.wav")
    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", "")])
    with caplog.at_level(logging.WARNING):
        classes = load_class_config(config)
        assert len(AudioDataModule(tmp_path / "audio", labels, tiny_config(), classes).partitions["train"]) == 1
    assert caplog.messages == [
        f"{config}: classes 'low', 'high' share the display name 'Tone': reports and confusion matrices will not "
        "tell them apart",
        f"{labels}: the devel partition is empty: training runs without validation"]
