"""The example data set (dspl.data.example): promised counts, determinism, valid configs, separable classes,
the CLI command."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from helpers import error_message, leftovers, one_error_line, run, snapshot, without_blocking

from dspl.cli.main import cli
from dspl.config import check_class_config, load_class_config, load_grid
from dspl.data.datamodule import AudioDataModule
from dspl.data.example import write_example_data


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def all_bytes(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_default_counts_and_format(tmp_path):
    out = write_example_data(tmp_path)
    rows = read_rows(out / "label.csv")
    assert len(rows) == 120 and len(list((out / "audio").glob("*.wav"))) == 120
    for partition, per_class in (("train", 24), ("devel", 8), ("test", 8)):
        labels = [r["label"] for r in rows if r["filename"].startswith(partition + "_")]
        assert {label: labels.count(label) for label in set(labels)} == {"low": per_class, "high": per_class,
                                                                          "noise": per_class}
    for row in rows:
        info = sf.info(out / "audio" / row["filename"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert info.frames == int(row["duration_frames"]) and 24000 <= info.frames <= 48000
    targets = read_rows(out / "regression_label.csv")
    assert [r["filename"] for r in targets] == [r["filename"] for r in rows]
    assert all(0.0 <= float(r["label"]) <= 1.0 for r in targets)


def test_same_arguments_give_the_same_bytes(tmp_path):
    first = all_bytes(write_example_data(tmp_path / "a", files_per_class=2, seed=7))
    second = all_bytes(write_example_data(tmp_path / "b", files_per_class=2, seed=7))
    assert first == second and len(first) == 6 + 6 + 6
    assert all_bytes(write_example_data(tmp_path / "c", files_per_class=2, seed=8)) != first


def test_configs_are_valid(example_dir):
    hp = load_grid(example_dir / "hp_config.json")
    assert len(hp) == 1
    assert {k: hp[0].to_dict()[k] for k in ("basemodel_name", "weights", "sample_rate", "chunk_size", "chunk_hop_size",
                                  "image_width", "prediction_type", "loss", "optimizer", "epochs")} == {
        "basemodel_name": "mobilenetv3_small_050", "weights": "", "sample_rate": 16000, "chunk_size": 1.0,
        "chunk_hop_size": 0.5, "image_width": 64, "prediction_type": "categorical",
        "loss": "categorical_crossentropy", "optimizer": "adam", "epochs": 6}
    classes = load_class_config(example_dir / "class_config.json")
    check_class_config(classes, "categorical")
    assert classes.labels == ("low", "high", "noise")
    regression = load_grid(example_dir / "regression_hp_config.json")[0]
    assert (regression.prediction_type, regression.training.optimizer, regression.training.loss) == (
        "regression", "ftrl", "mae")
    check_class_config(load_class_config(example_dir / "regression_class_config.json"), "regression")


def test_classes_are_apart_in_frequency(example_dir):
    rows = read_rows(example_dir / "label.csv")
    targets = {r["filename"]: float(r["label"]) for r in read_rows(example_dir / "regression_label.csv")}
    centroid: dict[str, list[float]] = {"low": [], "high": [], "noise": []}
    for row in rows:
        audio, rate = sf.read(example_dir / "audio" / row["filename"])
        power = np.abs(np.fft.rfft(audio)) ** 2
        centroid[row["label"]].append(float((power * np.fft.rfftfreq(len(audio), 1 / rate)).sum() / power.sum()))
    assert max(centroid["low"]) < 700 < 1400 < min(centroid["high"])
    assert min(centroid["noise"]) > 1000
    low = [targets[r["filename"]] for r in rows if r["label"] == "low"]
    high = [targets[r["filename"]] for r in rows if r["label"] == "high"]
    assert max(low) < min(high)


def test_example_data_loads_in_the_data_module(example_dir):
    hp = load_grid(example_dir / "hp_config.json")[0]
    dm = AudioDataModule(example_dir / "audio", example_dir / "label.csv", hp,
                         load_class_config(example_dir / "class_config.json"))
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (16, 16000) and len(dm.partitions["train"]) == 9
    assert sorted(set(batch["target"].tolist())) == [0, 1, 2]


def identities(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under directory with its inode and modification time: a file rewritten, even with the same
    bytes, gets others."""
    return {str(p.relative_to(directory)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.rglob("*")
            if p.is_file()}


def refusal(path: Path) -> str:
    """example-data's line for a file in its way."""
    return (f"{path}: exists with other content than the example data; nothing was written: choose another output "
            "directory (-o) or move the file away")


def test_cli_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["example-data", "-o", str(tmp_path), "--files-per-class", "6", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert f"example data written to {tmp_path}" in result.output
    assert len(read_rows(tmp_path / "label.csv")) == 3 * (6 + 2 + 2)
    earlier = snapshot(tmp_path)
    one_error_line(run("example-data", "-o", str(tmp_path), "--files-per-class", "2"),
                   refusal(tmp_path / "audio" / "train_001.wav"))  # another run's data is not this one's to replace
    assert snapshot(tmp_path) == earlier and leftovers(tmp_path) == []


def test_a_rerun_leaves_the_files_and_restores_a_missing_one(tmp_path):
    """The quick start run twice: the example files stay as they are (not even rewritten), files of the user's
    beside them too (a training run's output, audio named like the example's); a removed one comes back."""
    arguments = ("example-data", "-o", str(tmp_path), "--files-per-class", "2", "--seed", "7")
    assert run(*arguments).exit_code == 0
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "model.h5").write_bytes(b"a trained model")
    (tmp_path / "audio" / "train_999.wav").write_bytes(b"the user's recording")
    earlier, before = snapshot(tmp_path), identities(tmp_path)
    (tmp_path / "audio" / "test_002.wav").unlink()
    result = run(*arguments)
    assert result.exit_code == 0, result.output
    assert snapshot(tmp_path) == earlier and leftovers(tmp_path) == []
    after = identities(tmp_path)
    del before["audio/test_002.wav"], after["audio/test_002.wav"]  # restored: a new file (its bytes are checked above)
    assert after == before


@pytest.mark.parametrize("name, content", [("label.csv", b"my precious labels"),
                                           ("audio/train_001.wav", None),  # the user's own ComParE-named audio
                                           ("regression_class_config.json", b"{}")])
def test_a_file_with_other_content_is_never_replaced(tmp_path, write_sine, name, content):
    path = tmp_path / "data" / name
    if content is None:
        write_sine(path)
    else:
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    earlier = path.read_bytes()
    one_error_line(run("example-data", "-o", str(tmp_path / "data"), "--files-per-class", "1"), refusal(path))
    folders = [folder for folder in path.parents if folder.is_relative_to(tmp_path) and folder != tmp_path]
    assert sorted(tmp_path.rglob("*")) == sorted([path, *folders])  # nothing written, not even a folder
    assert path.read_bytes() == earlier


def test_a_named_pipe_in_the_way_is_refused_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "label.csv")
    assert without_blocking(tmp_path / "label.csv", error_message, write_example_data, tmp_path, 1) == refusal(
        tmp_path / "label.csv")
    assert sorted(tmp_path.iterdir()) == [tmp_path / "label.csv"]
