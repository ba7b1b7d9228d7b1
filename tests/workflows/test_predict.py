"""`predict` (dspl.workflows.predict): DeepSpectrumLite's CSVs, grouped scores as the mean of the chunk CSV,
configs checked against the model, globs of models and of audio, nested folders, undecodable files, and
predictions that never clobber each other."""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import (
    CLASS_DICT,
    leftovers,
    model_grid,
    one_error_line,
    outside,
    partial_files,
    read_csv,
    run,
    snapshot,
    spread_model_file,
    tiny_config,
    untrained_model,
)

import dspl
from dspl.cli.main import cli
from dspl.data.audio import audio_frames
from dspl.data.chunking import num_chunks
from dspl.errors import DsplError
from dspl.files import exclusive_lock


def test_predict_cli_writes_deepspectrumlite_csv(trained_model, example_dir):
    audio = example_dir / "audio"
    result = run("-v", "predict", "-md", str(trained_model), "-d", str(audio))
    assert result.exit_code == 0, result.output
    out = trained_model.parent / "test" / "test"
    rows = read_csv(out / "test.chunks.predictions.csv")
    files = sorted(audio.glob("*.wav"))
    hp = dspl.load_model(trained_model).config.spec
    assert len(rows) == sum(num_chunks(audio_frames(f, hp.sample_rate), hp) for f in files)
    labels = list(json.loads((example_dir / "class_config.json").read_text()))
    assert list(rows[0]) == ["filename", "time", *(f"prob_{label}" for label in labels), "prediction"]
    probs = np.array([[float(r[k]) for k in r if k.startswith("prob_")] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    grouped = read_csv(out / "test.grouped.predictions.csv")
    assert [r["filename"] for r in grouped] == [f.name for f in files]


def test_predict_checks_given_configs_against_the_model(trained_model, example_dir, tmp_path):
    audio = str(example_dir / "audio")
    same = model_grid(trained_model, tmp_path / "same.json", batch_size=3, epochs=9)  # training keys may differ
    assert run("predict", "-md", str(trained_model), "-d", audio, "-hc", str(same)).exit_code == 0
    bad = model_grid(trained_model, tmp_path / "hp.json", sample_rate=8000, upper_edge_hertz=4000.0)
    result = run("predict", "-md", str(trained_model), "-d", audio, "-hc", str(bad))
    assert result.exit_code == 1
    assert "no configuration matches the model" in result.output and "key 'sample_rate' is 8000" in result.output
    classes = tmp_path / "cc.json"
    classes.write_text(json.dumps({"a": "A", "b": "B"}))
    result = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio"), "-cc", str(classes))
    assert result.exit_code == 1 and "classes ['a', 'b'] differ from the model's" in result.output


def test_predict_with_a_glob_over_models(trained_model, example_dir, tmp_path):
    import shutil

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(trained_model, tmp_path / name / "model.h5")
    result = run("predict", "-md", str(tmp_path / "*" / "model.h5"), "-d", str(example_dir / "audio"))
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        assert (tmp_path / name / "test" / "test" / "test.chunks.predictions.csv").is_file()


def test_predict_loads_each_model_once_for_many_files(trained_model, example_dir, monkeypatch):
    import dspl.workflows.predict
    from dspl.workflows.predict import predict

    calls = []
    real = dspl.workflows.predict.load_model_file
    monkeypatch.setattr(dspl.workflows.predict, "load_model_file",
                        lambda path, *configs: calls.append(path) or real(path, *configs))
    files = sorted((example_dir / "audio").glob("*.wav"))
    assert len(files) >= 15
    predict(trained_model, example_dir / "audio", batch_size=4)
    assert calls == [trained_model]


def test_predict_takes_a_glob_of_audio_files_as_deepspectrumlite_documented(trained_model, example_dir):
    result = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio" / "test_*.wav"))
    assert result.exit_code == 0, result.output
    rows = read_csv(trained_model.parent / "test" / "test" / "test.grouped.predictions.csv")
    assert [r["filename"] for r in rows] == sorted(p.name for p in (example_dir / "audio").glob("test_*.wav"))
    missing = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio" / "none_*.wav"))
    assert missing.exit_code == 1 and "the pattern matches no audio files" in missing.output


def test_predict_grouped_scores_are_the_mean_of_the_chunk_csv(spread_model, example_dir):
    result = run("predict", "-md", str(spread_model), "-d", str(example_dir / "audio"))
    assert result.exit_code == 0, result.output
    out = spread_model.parent / "test" / "test"
    chunks, grouped = read_csv(out / "test.chunks.predictions.csv"), read_csv(out / "test.grouped.predictions.csv")
    columns = ["prob_low", "prob_high", "prob_noise"]
    assert list(grouped[0]) == ["filename", *columns, "prediction"]
    by_file = defaultdict(list)
    for row in chunks:
        by_file[row["filename"]].append([float(row[c]) for c in columns])
    assert [r["filename"] for r in grouped] == list(by_file) and len(grouped) == 15
    far_from_first = 0
    for row in grouped:
        scores = np.asarray(by_file[row["filename"]])
        mean = scores.mean(axis=0)
        np.testing.assert_allclose([float(row[c]) for c in columns], mean, atol=1.5e-6, err_msg=row["filename"])
        assert row["prediction"] == ["low", "high", "noise"][int(np.argmax(mean))]
        far_from_first += bool(np.abs(scores[0] - mean).max() > 1e-3)
    assert far_from_first >= 5  # the chunks of a file really differ: the first chunk's scores are not the mean


def test_predict_returns_the_chunk_csv_of_every_model(tmp_path, example_dir):
    from dspl.workflows.predict import predict

    models = [spread_model_file(tmp_path / name / "model.h5", tiny_config(), CLASS_DICT, seed=i)
              for i, name in enumerate(("one", "two"))]
    audio = sorted((example_dir / "audio").glob("test_*.wav"))[0]
    written = predict(tmp_path / "*" / "model.h5", audio)
    assert [w.chunks_csv for w in written] == [m.parent / "test" / "test" / "test.chunks.predictions.csv"
                                               for m in models]
    assert all(w.chunks_csv.is_file() and w.grouped_csv.is_file() for w in written)


def test_predict_scores_every_file_under_nested_folders(spread_model, tmp_path, write_sine):
    data = tmp_path / "data"
    expected = {
        "top.wav": write_sine(data / "top.wav", 300, seconds=1.5),
        "a/one.wav": write_sine(data / "a" / "one.wav", 800, seconds=1.0),
        "a/b/two.flac": write_sine(data / "a" / "b" / "two.flac", 2000, seconds=2.0),
        "c/d/e/three.ogg": write_sine(data / "c" / "d" / "e" / "three.ogg", 4000, seconds=1.0),
    }
    (data / "a" / "notes.txt").write_text("not audio")
    result = CliRunner().invoke(cli, ["predict", "-md", str(spread_model), "-d", str(data)])
    assert result.exit_code == 0, result.output
    out = spread_model.parent / "test" / "test"
    grouped = read_csv(out / "test.grouped.predictions.csv")
    assert sorted(r["filename"] for r in grouped) == sorted(expected)
    chunks = read_csv(out / "test.chunks.predictions.csv")
    per_file = {name: sum(r["filename"] == name for r in chunks) for name in expected}
    # 1 s chunks every 0.5 s: 1.5 s -> 2 chunks, 1 s -> 1, 2 s -> 3
    assert per_file == {"top.wav": 2, "a/one.wav": 1, "a/b/two.flac": 3, "c/d/e/three.ogg": 1}


def test_predict_model_glob_with_double_star_reaches_every_depth(tmp_path):
    from dspl.workflows.predict import expand_model_paths

    for sub in ("a", "b/c", "b/c/d/e"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "model.h5").write_bytes(b"")
    (tmp_path / "b" / "other.h5").write_bytes(b"")
    found = expand_model_paths(tmp_path / "**" / "model.h5")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/model.h5", "b/c/d/e/model.h5", "b/c/model.h5"]
    assert expand_model_paths(tmp_path / "*" / "*.h5") == [tmp_path / "a" / "model.h5", tmp_path / "b" / "other.h5"]
    with pytest.raises(DsplError, match="no model file found"):
        expand_model_paths(tmp_path / "*" / "missing.h5")


def test_predict_skips_and_lists_an_undecodable_file(untrained_model_file, tmp_path, write_sine, caplog):
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    (tmp_path / "audio" / "b.wav").write_bytes(b"RIFF junk")
    write_sine(tmp_path / "audio" / "c.wav", seconds=2.5)
    with caplog.at_level(logging.WARNING, logger="dspl.workflows.predict"):
        result = run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 0, result.output
    rows = read_csv(untrained_model_file.parent / "test" / "test" / "test.grouped.predictions.csv")
    assert [row["filename"] for row in rows] == ["a.wav", "c.wav"]
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith(
        f"{untrained_model_file}: skipped 1 of 3 file(s) that cannot be decoded: {tmp_path / 'audio' / 'b.wav'}: "
        "cannot decode audio (")


# --- predictions never clobber each other ---------------------------------------------------------------------
def checkpoint_of(model_file: Path, destination: Path) -> Path:
    """A checkpoint as DsplModule writes it (hyper_parameters + 'model.'-prefixed state dict) of a model file."""
    from dspl.models.modelfile import read_model_file

    contents = read_model_file(model_file)
    torch.save({"hyper_parameters": {"hp": contents.config.to_dict(), "classes": contents.classes.to_dict()},
                "state_dict": {f"model.{k}": v for k, v in contents.state.items()}}, destination)
    return destination


def test_model_h5_and_model_ckpt_of_one_folder_write_separate_predictions(untrained_model_file, tmp_path, write_sine):
    checkpoint_of(untrained_model_file, untrained_model_file.with_name("model.ckpt"))
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    result = run("predict", "-md", str(untrained_model_file.parent / "model.*"), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 0, result.output
    folder = untrained_model_file.parent / "test"
    written = [line.split()[1] for line in result.output.splitlines() if line.startswith("chunks:")]
    assert written == [str(folder / "model.ckpt" / "test.chunks.predictions.csv"),
                       str(folder / "test" / "test.chunks.predictions.csv")]
    assert read_csv(folder / "test" / "test.grouped.predictions.csv") == read_csv(
        folder / "model.ckpt" / "test.grouped.predictions.csv")
    assert leftovers(untrained_model_file.parent) == []


def test_a_second_predict_into_the_same_folder_is_refused(untrained_model_file, tmp_path, write_sine):
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    folder = untrained_model_file.parent / "test" / "test"
    with exclusive_lock(folder / ".dspl-predict.lock", "the test"):  # as another process's predict holds it
        result = run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio"))
    one_error_line(result, f"{folder}: another dspl predict with {untrained_model_file} is running into this folder "
                           "already; wait for it to finish, then run again")
    assert not (folder / "test.chunks.predictions.csv").exists()


# --- what predict answers on the terminal ------------------------------------------------------------------------
def test_predict_prints_each_files_decision_and_scores(spread_model, example_dir):
    audio = sorted((example_dir / "audio").glob("test_*.wav"))[:2]
    result = run("predict", "-md", str(spread_model), "-d", str(example_dir / "audio" / "test_00[12].wav"))
    assert result.exit_code == 0, result.output
    grouped = read_csv(spread_model.parent / "test" / "test" / "test.grouped.predictions.csv")
    for path, row in zip(audio, grouped):
        printed = next(line for line in result.output.splitlines() if path.name in line).strip("│ ").split("│")
        assert [cell.strip() for cell in printed] == [row["filename"], row["prediction"],
                                                       *(f"{float(row[f'prob_{c}']):.3f}" for c in CLASS_DICT)]


def test_predict_lists_twenty_files_and_writes_all(untrained_model_file, tmp_path, write_sine):
    for i in range(23):
        write_sine(tmp_path / "audio" / f"{i:02d}.wav", seconds=1.0)
    result = run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 0, result.output
    assert "19.wav" in result.output and "20.wav" not in result.output and "... and 3 more file(s)" in result.output
    assert len(read_csv(untrained_model_file.parent / "test" / "test" / "test.grouped.predictions.csv")) == 23


def test_predict_writes_into_the_folder_o_names(untrained_model_file, tmp_path, write_sine):
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    result = run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio"), "-o",
                 str(tmp_path / "mine"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["test.chunks.predictions.csv",
                                                                     "test.grouped.predictions.csv"]
    assert not (untrained_model_file.parent / "test").exists()
    untrained_model_file.with_name("other.h5").write_bytes(untrained_model_file.read_bytes())
    both = untrained_model_file.parent / "*.h5"
    one_error_line(run("predict", "-md", str(both), "-d", str(tmp_path / "audio"), "-o", str(tmp_path / "mine")),
                   f"{both}: names 2 models; -o takes the predictions of one")


def test_predict_says_when_it_replaces_an_earlier_runs_predictions(untrained_model_file, tmp_path, write_sine,
                                                                    caplog):
    for name in ("a", "b"):
        write_sine(tmp_path / name / f"{name}.wav", seconds=1.5)
    folder = untrained_model_file.parent / "test" / "test"
    with caplog.at_level(logging.WARNING, logger="dspl.workflows.predict"):
        assert run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "a")).exit_code == 0
        assert run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "a")).exit_code == 0
        assert caplog.messages == []  # the same files again: nothing of the earlier run is lost
        assert run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "b")).exit_code == 0
    assert caplog.messages == [f"{folder}: replacing the predictions of an earlier run, whose 1 file(s) this run "
                               "does not score (e.g. a.wav); -o chooses another folder"]
    assert not (folder / ".dspl-predict.lock").exists()


# --- models that are not finite, disks that cannot take the CSVs ------------------------------------------------
def _edited_model(path: Path, head: dict[str, float]) -> Path:
    """An untrained tiny model file whose head's tensors ('output.weight', ...) are filled with the given values."""
    from dspl.config import ClassConfig
    from dspl.models.modelfile import save_model_file

    config = tiny_config()
    model = untrained_model(config, len(CLASS_DICT))
    with torch.no_grad():
        for name, value in head.items():
            model.head.get_parameter(name).fill_(value)
    return save_model_file(path, model, config, ClassConfig.from_dict(CLASS_DICT))


def test_a_model_with_nan_weights_is_one_line_and_writes_nothing(tmp_path, write_sine):
    model = _edited_model(tmp_path / "nan" / "model.h5", {"output.weight": float("nan")})
    write_sine(tmp_path / "audio" / "a.wav")
    before = snapshot(tmp_path)
    one_error_line(run("predict", "-md", str(model), "-d", str(tmp_path / "audio")),
                   f"{model}: 1 stored tensor(s) hold NaN or infinite values (first: 'head.output.weight'): the model "
                   "is damaged, expected finite weights; train it again")
    assert snapshot(tmp_path) == before


def test_a_model_whose_scores_overflow_is_one_line_and_writes_nothing(tmp_path, write_sine):
    largest = float(np.finfo(np.float32).max)  # finite weights whose sums overflow: every dense unit above 0
    model = _edited_model(tmp_path / "huge" / "model.h5", {"dense.bias": 1.0, "output.weight": largest,
                                                           "output.bias": largest})
    write_sine(tmp_path / "audio" / "a.wav")
    before = snapshot(tmp_path)
    result = run("predict", "-md", str(model), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = re.fullmatch(rf"error: {re.escape(str(model))}: gave NaN or infinite scores for (\d+) of (\d+) chunk\(s\), "
                        r"expected finite scores: its weights or its layers overflow; check the model \(or train it "
                        r"again\)", result.output.strip().splitlines()[-1])
    assert line and 1 <= int(line[1]) <= int(line[2])
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("key, value, problem", [
    ("image_width", -5, "key 'image_width': value -5 is out of range, expected a whole number of pixels from 1 to "
                        "2048"),
    ("sample_rate", "abc", 'key \'sample_rate\': value "abc" is not of type int'),
    ("seed", 2**64, f"key 'seed': value {2**64} is out of range, expected an integer from 0 to 4294967295 (2**32 - 1, "
                    "numpy's range)"),
    ("num_unit", 16, "key 'num_units' is given twice, as 'num_units' and as its alias 'num_unit': expected one of "
                     "them"),
])
def test_configs_stored_in_a_model_file_pass_the_grid_schema(untrained_model_file, tmp_path, write_sine, key, value,
                                                             problem):
    import h5py

    with h5py.File(untrained_model_file, "r+") as f:  # edited by hand
        f.attrs["hp"] = json.dumps({**json.loads(f.attrs["hp"]), key: value})
    write_sine(tmp_path / "audio" / "a.wav")
    one_error_line(run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio")),
                   f"{untrained_model_file} (stored configuration): {problem}")


def test_a_full_disk_is_one_line_and_keeps_the_earlier_predictions(mounts, tmp_path, write_sine):
    disk = mounts.tmpfs("disk", size="8m")
    model = spread_model_file(disk / "model.h5", tiny_config(), CLASS_DICT)
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    assert run("predict", "-md", str(model), "-d", str(tmp_path / "audio")).exit_code == 0
    write_sine(tmp_path / "audio" / "b.wav", seconds=2)
    mounts.fill(disk)
    before, around = snapshot(disk), outside(tmp_path, disk)
    one_error_line(run("predict", "-md", str(model), "-d", str(tmp_path / "audio")),
                   f"{disk / 'test' / 'test' / 'test.chunks.predictions.csv'}: No space left on device")
    assert snapshot(disk) == before and outside(tmp_path, disk) == around
    assert partial_files(disk / "test") == [] and leftovers(disk) == []


def test_a_read_only_model_folder_is_one_line(mounts, tmp_path, write_sine):
    disk = mounts.tmpfs("disk", size="8m")
    model = spread_model_file(disk / "model.h5", tiny_config(), CLASS_DICT)
    write_sine(tmp_path / "audio" / "a.wav")
    mounts.read_only(disk)
    before = snapshot(tmp_path)
    one_error_line(run("predict", "-md", str(model), "-d", str(tmp_path / "audio")),
                   f"{disk / 'test' / 'test'}: cannot create the predictions folder: Read-only file system")
    assert snapshot(tmp_path) == before
