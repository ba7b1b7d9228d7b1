"""Reliability (issue 12): nothing lost on kill -9, resume, no code from model files, one clear line per user error,
nothing accepted silently, offline weights failing fast, bounded memory for long files."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import CLASS_DICT, read_csv, spread_model_file, tiny_config, write_grid

from dspl.cli.main import cli
from dspl.config import ClassConfig
from dspl.errors import DsplError
from dspl.files import JOURNAL, clean_stale, exclusive_lock, temporary_path, work_dir
from dspl.models.modelfile import read_checkpoint

POLL = 0.02  # seconds between looks at the file system while a child process runs
KILL_DEADLINE = 300.0  # seconds a child may take to reach a kill point (a loaded CI machine)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="dspl")


def one_error_line(result, message: str) -> None:
    """The README's rule: exit status 1 and exactly one line, `error: <message>`."""
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == f"error: {message}"
    assert "Traceback" not in result.output


def spawn(*args: str) -> subprocess.Popen:
    """`dspl ARGS` in a child process; its output goes to a file (a full pipe would stall it)."""
    output = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "dspl", *args], stdout=output, stderr=subprocess.STDOUT)
    process.output = output
    return process


def kill_when(process: subprocess.Popen, appears: Callable[[], bool]) -> None:
    """Poll until ``appears()`` is true, then kill -9 the process; fails if it ends first or takes too long."""
    deadline = time.monotonic() + KILL_DEADLINE
    while not appears():
        if process.poll() is not None:
            process.output.seek(0)
            pytest.fail(f"the process ended (status {process.returncode}) before the kill point:\n"
                        f"{process.output.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the kill point was not reached in time")
        time.sleep(POLL)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    process.output.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes), without dspl's hidden staging folders."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".dspl-") for part in p.relative_to(folder).parts)}


def leftovers(folder: Path) -> list[str]:
    """Temporaries, staging folders and journals under folder."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith(".dspl-") and p.name != ".dspl-predict.lock")


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# --- item 1: batch arithmetic ------------------------------------------------------------------------------------

@pytest.mark.parametrize("files_per_class, batch_size", [(8, 23), (11, 4)])
def test_a_last_training_batch_of_one_chunk_trains(tmp_path, write_sine, write_labels, files_per_class, batch_size):
    from dspl.workflows.train import TrainingData, TrainOptions, train_configuration

    rows = []
    for k, label in enumerate(CLASS_DICT):
        for i in range(files_per_class):
            rows.append((f"train_{label}_{i}.wav", label, ""))
            write_sine(tmp_path / "audio" / rows[-1][0], frequency=300 * (k + 1) + 10 * i, seconds=1.0)
        rows.append((f"devel_{label}.wav", label, ""))
        write_sine(tmp_path / "audio" / rows[-1][0], frequency=300 * (k + 1), seconds=1.0)
    labels = write_labels(tmp_path / "labels.csv", rows)
    hp = tiny_config(batch_size=batch_size, epochs=1, chunk_size=1.0, chunk_hop_size=1.0)
    assert (3 * files_per_class) % batch_size == 1
    options = TrainOptions(trainer_options={"accelerator": "cpu", "enable_progress_bar": False, "callbacks": []})
    result = train_configuration(0, hp, ClassConfig.from_dict(CLASS_DICT), TrainingData(tmp_path / "audio", labels),
                                 tmp_path / "out", options)
    assert result.model_file.is_file()


# --- item 2: crash-safe outputs: real kill -9 of `dspl train` and `dspl export` ----------------------------------

def train_args(example_dir: Path, out: Path, hp_file: Path) -> list[str]:
    return ["train", "-d", str(example_dir / "audio"), "-md", str(out), "-hc", str(hp_file),
            "-cc", str(example_dir / "class_config.json"), "-l", str(example_dir / "label.csv")]


def grid_file(path: Path, epochs: int, learning_rates: list[float]) -> Path:
    grid = {k: [v] for k, v in tiny_config(epochs=epochs, batch_size=8).to_dict().items()}
    grid["learning_rate"] = learning_rates
    path.write_text(json.dumps(grid), encoding="utf-8")
    return path


def test_kill_after_the_first_epoch_checkpoint_resumes_from_it(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 3, [0.001]), tmp_path / "out"
    run_dir = out / "models" / "example" / "run_config_0"
    kill_when(spawn(*train_args(example_dir, out, hp_file)), (run_dir / "last.ckpt").is_file)

    assert read_checkpoint(run_dir / "last.ckpt").header["epoch"] == 0  # complete, the first epoch's
    assert not (run_dir / "model.h5").exists()
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 0, result.output
    assert f"configuration 0: resuming after epoch 1 of 3 ({run_dir / 'last.ckpt'})" in result.output
    assert read_checkpoint(run_dir / "model.ckpt").header["epoch"] == 3  # Lightning counts the finished epochs
    assert {"model.ckpt", "model.h5"} <= {p.name for p in run_dir.iterdir()}
    assert not (run_dir / "last.ckpt").exists() and leftovers(out) == []


def test_kill_in_the_second_configuration_keeps_the_first_and_resumes_the_second(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 3, [0.001, 0.002]), tmp_path / "out"
    first, second = (out / "models" / "example" / f"run_config_{i}" for i in (0, 1))
    kill_when(spawn(*train_args(example_dir, out, hp_file)), (second / "last.ckpt").is_file)

    before = snapshot(first)
    assert {"model.ckpt", "model.h5"} <= set(before) and not (first / "last.ckpt").exists()
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 0, result.output
    assert (f"configuration 0: complete ({first / 'model.h5'}), skipped; --restart trains it again"
            in result.output)
    assert f"configuration 1: resuming after epoch 1 of 3 ({second / 'last.ckpt'})" in result.output
    assert snapshot(first) == before
    assert {"model.ckpt", "model.h5"} <= {p.name for p in second.iterdir()}
    assert not (second / "last.ckpt").exists() and leftovers(out) == []


@pytest.fixture
def untrained_model(tmp_path) -> Path:
    return spread_model_file(tmp_path / "model" / "model.h5", tiny_config(), CLASS_DICT)


def export_args(model: Path, out: Path) -> list[str]:
    return ["export", "-s", str(model), "-o", str(out), "--format", "onnx", "--format", "saved_model"]


def staged(out: Path, relative: str) -> bool:
    return any((stage / relative).is_file() for stage in out.glob(".dspl-staging-*"))


def test_kills_during_export_keep_the_earlier_export(untrained_model, tmp_path, caplog):
    """Killed once when ONNX is staged and once when the SavedModel is: the earlier export stays as it was."""
    out, work = tmp_path / "export", Path(os.environ["TMPDIR"])
    assert run(*export_args(untrained_model, out)).exit_code == 0
    before = snapshot(out)
    assert sorted(before) == ["export_report.json", "model.onnx", "saved_model/fingerprint.pb",
                              "saved_model/saved_model.pb", "saved_model/variables/variables.data-00000-of-00001",
                              "saved_model/variables/variables.index"]
    killed = []
    for kill_point in ("model.onnx", "saved_model/saved_model.pb"):
        process = spawn(*export_args(untrained_model, out))
        kill_when(process, lambda: staged(out, kill_point))
        killed.append(process.pid)
        assert snapshot(out) == before  # nothing in place changed; the killed run's staging folder is hidden
        assert staged(out, kill_point) and list(work.glob(f"dspl-export-{process.pid}-*"))

    with caplog.at_level(logging.WARNING, logger="dspl.export.exporter"):
        assert run(*export_args(untrained_model, out)).exit_code == 0
    assert f"{out}: replacing export_report.json, model.onnx, saved_model/ of an earlier export" in caplog.messages
    assert sorted(snapshot(out)) == sorted(before) and leftovers(out) == []
    assert not [path for pid in killed for path in work.glob(f"dspl-*-{pid}-*")]


def test_a_commit_interrupted_between_its_renames_is_finished_by_the_next_run(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.ckpt").write_text("old checkpoint")
    (folder / "model.h5").write_text("old model")
    checkpoint, model = temporary_path(folder / "model.ckpt"), temporary_path(folder / "model.h5")
    checkpoint.write_text("new checkpoint")
    model.write_text("new model")
    (folder / JOURNAL).write_text(json.dumps({"moves": [[checkpoint.name, "model.ckpt"], [model.name, "model.h5"]]}))
    os.replace(checkpoint, folder / "model.ckpt")  # killed here: a new checkpoint beside the old model

    clean_stale(folder)
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"model.ckpt": "new checkpoint",
                                                                 "model.h5": "new model"}


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    dead, live = dead_pid(), os.getpid()
    for pid in (dead, live):
        (tmp_path / f".model.h5.{pid}-{'a' * 32}.tmp").write_text("half")
        (tmp_path / f".dspl-staging-{pid}-{'b' * 32}").mkdir()
        (Path(os.environ["TMPDIR"]) / f"dspl-export-{pid}-{'c' * 32}").mkdir()
    clean_stale(tmp_path)
    with work_dir("export"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".dspl-staging-{live}-{'b' * 32}",
                                                          f".model.h5.{live}-{'a' * 32}.tmp"]
    work = sorted(p.name for p in Path(os.environ["TMPDIR"]).glob("dspl-export-*"))
    assert f"dspl-export-{live}-{'c' * 32}" in work and f"dspl-export-{dead}-{'c' * 32}" not in work


# --- item 3: resume, --restart, another configuration's folder ---------------------------------------------------

def test_a_folder_of_another_configuration_is_refused_and_restart_replaces_it(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 1, [0.001]), tmp_path / "out"
    run_dir = out / "models" / "example" / "run_config_0"
    spread_model_file(run_dir / "model.h5", tiny_config(epochs=1, batch_size=8, learning_rate=0.01), CLASS_DICT)
    result = run(*train_args(example_dir, out, hp_file))
    one_error_line(result, f"{run_dir / 'model.h5'}: holds a model of another configuration (key 'learning_rate' "
                           "is 0.01 there, 0.001 in configuration 0); use another -md or tb_run_id, or --restart to "
                           "replace it")
    (out / "logs" / "example" / "run_config_0").mkdir(parents=True)
    (out / "logs" / "example" / "run_config_0" / "events.out.tfevents.old").write_text("another run")

    result = run(*train_args(example_dir, out, hp_file), "--restart")
    assert result.exit_code == 0, result.output
    assert read_checkpoint(run_dir / "model.ckpt").config.to_dict()["learning_rate"] == 0.001
    assert not (out / "logs" / "example" / "run_config_0" / "events.out.tfevents.old").exists()


# --- item 4: predictions never clobber each other ----------------------------------------------------------------

def checkpoint_of(model_file: Path, destination: Path) -> Path:
    """A checkpoint as DsplModule writes it (hyper_parameters + 'model.'-prefixed state dict) of a model file."""
    from dspl.models.modelfile import read_model_file

    contents = read_model_file(model_file)
    torch.save({"hyper_parameters": {"hp": contents.config.to_dict(), "classes": contents.classes.to_dict()},
                "state_dict": {f"model.{k}": v for k, v in contents.state.items()}}, destination)
    return destination


def test_model_h5_and_model_ckpt_of_one_folder_write_separate_predictions(untrained_model, tmp_path, write_sine):
    checkpoint_of(untrained_model, untrained_model.with_name("model.ckpt"))
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    result = run("predict", "-md", str(untrained_model.parent / "model.*"), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 0, result.output
    folder = untrained_model.parent / "test"
    assert result.output.split() == [str(folder / "model.ckpt" / "test.chunks.predictions.csv"),
                                     str(folder / "test" / "test.chunks.predictions.csv")]
    assert read_csv(folder / "test" / "test.grouped.predictions.csv") == read_csv(
        folder / "model.ckpt" / "test.grouped.predictions.csv")
    assert leftovers(untrained_model.parent) == []


def test_a_second_predict_into_the_same_folder_is_refused(untrained_model, tmp_path, write_sine):
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    folder = untrained_model.parent / "test" / "test"
    with exclusive_lock(folder / ".dspl-predict.lock", "the test"):  # as another process's predict holds it
        result = run("predict", "-md", str(untrained_model), "-d", str(tmp_path / "audio"))
    one_error_line(result, f"{folder}: another dspl predict with {untrained_model} is running into this folder "
                           "already; wait for it to finish, then run again")
    assert not (folder / "test.chunks.predictions.csv").exists()


# --- item 5: a model file carries data, never code ---------------------------------------------------------------

EVIL_PARSER = '''
from pathlib import Path
from typing import Callable
Path(__file__).with_name("ran.txt").write_text("the model's parser ran")
from dspl.data.parsers import ComParEParser as Evil
'''


def test_devel_test_never_imports_a_parser_named_in_the_model_file(tmp_path, write_sine, write_labels, caplog):
    hp = tiny_config(label_parser="evil.py:Evil")
    model = spread_model_file(tmp_path / "model" / "model.h5", hp, CLASS_DICT)
    (tmp_path / "evil.py").write_text(EVIL_PARSER)
    write_sine(tmp_path / "audio" / "devel_a.wav", seconds=1.5)
    labels = write_labels(tmp_path / "labels.csv", [("devel_a.wav", "low", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        result = run("devel-test", "-md", str(model), "-d", str(tmp_path / "audio"), "-l", str(labels))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ran.txt").exists()
    assert (f"{model} names the label parser 'evil.py:Evil': dspl runs no code named in a model file and reads the "
            "labels with the built-in ComParE parser (give your hp config with -hc to use that parser)"
            in caplog.messages)
    assert (model.parent / "evaluation" / "devel" / "devel.chunks.metrics.json").is_file()


def test_a_parser_of_the_users_own_config_says_which_file_it_runs(tmp_path, write_sine, write_labels, caplog):
    hp = tiny_config(label_parser="evil.py:Evil")
    model = spread_model_file(tmp_path / "model" / "model.h5", hp, CLASS_DICT)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "evil.py").write_text(EVIL_PARSER)
    hp_file = write_grid(config_dir / "hp.json", hp)
    write_sine(tmp_path / "audio" / "devel_a.wav", seconds=1.5)
    labels = write_labels(tmp_path / "labels.csv", [("devel_a.wav", "low", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        result = run("devel-test", "-md", str(model), "-d", str(tmp_path / "audio"), "-l", str(labels),
                     "-hc", str(hp_file))
    assert result.exit_code == 0, result.output
    assert (config_dir / "ran.txt").is_file()
    assert f"label_parser 'evil.py:Evil': running the Python code of {config_dir / 'evil.py'}" in caplog.messages


@pytest.mark.parametrize("name", ["../outside.wav", "/tmp/outside.wav", "sub/../../outside.wav"])
def test_label_paths_leaving_the_data_folder_are_refused(tmp_path, write_sine, write_labels, name):
    from dspl.data.parsers import LabelEntry, check_files_exist

    with pytest.raises(DsplError) as error:
        check_files_exist([LabelEntry(Path(name), "low")], tmp_path / "audio", tmp_path / "labels.csv")
    assert str(error.value) == (f"{tmp_path / 'labels.csv'}: file name '{Path(name)}' leaves the data directory "
                                f"{tmp_path / 'audio'}: expected a path relative to it, inside it")


class RunsCode:
    """A pickle that runs code when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the pickle ran"))


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": RunsCode(marker)}, evil)
    result = run("predict", "-md", str(evil), "-d", str(tmp_path))
    one_error_line(result, f"{evil}: not a checkpoint written by dspl training: it holds Python objects other than "
                           "tensors and plain data, which dspl never loads")
    assert not marker.exists() and "weights_only=False" not in result.output


def test_malicious_backbone_weights_are_refused_without_running_them(tmp_path):
    from dspl.models.weights import read_state_dict

    marker, evil = tmp_path / "ran.txt", tmp_path / "weights.pth"
    torch.save({"state_dict": RunsCode(marker)}, evil)
    with pytest.raises(DsplError) as error:
        read_state_dict(evil)
    assert str(error.value) == (f"weights: {evil}: not a state dict: it holds Python objects other than tensors and "
                                "plain data, which dspl never loads")
    assert not marker.exists()


def test_an_unpicklable_checkpoint_is_one_line(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a pickle at all")
    one_error_line(run("predict", "-md", str(bad), "-d", str(tmp_path)),
                   f"{bad}: not a checkpoint written by dspl training (or truncated): it cannot be unpickled")


# --- item 6: bad values caught up front --------------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    ("chunk_size", "NaN", "key 'chunk_size': value NaN is not a finite number"),
    ("learning_rate", "Infinity", "key 'learning_rate': value Infinity is not a finite number"),
    ("chunk_hop_size", "0.00001", "(configuration 0): key 'chunk_hop_size': value 1e-05 is less than one sample at "
                                  "sample_rate 16000"),
    ("stft_window_size", "0.5", "(configuration 0): key 'stft_window_size': value 0.5 is longer than a chunk "
                                "(chunk_size 0.25 s): expected a window that fits into one chunk"),
])
def test_bad_numbers_are_one_line_before_training(example_dir, tmp_path, key, value, message):
    grid = {k: [v] for k, v in tiny_config().to_dict().items()}
    grid.update(chunk_size=[0.25], chunk_hop_size=[0.25], stft_fft_length=[0.5])
    hp_file = tmp_path / "hp.json"
    hp_file.write_text(json.dumps(grid).replace(f'"{key}": [{json.dumps(grid[key][0])}]', f'"{key}": [{value}]'))
    result = run(*train_args(example_dir, tmp_path / "out", hp_file))
    one_error_line(result, f"{hp_file} {message}" if message.startswith("(") else f"{hp_file}: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value", [("tb_run_id", "../../../victim"), ("tb_experiment", ".."),
                                        ("tb_run_id", "a/b"), ("tb_experiment", "")])
def test_run_names_that_leave_the_model_dir_are_refused_before_restart_removes_anything(example_dir, tmp_path, key,
                                                                                        value):
    out = tmp_path / "a" / "b" / "out"
    victim = out.parent / "victim_config_0"  # where <-md>/logs/<exp>/../../../victim_config_0 points
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    hp_file = grid_file(tmp_path / "hp.json", 1, [0.001])
    grid = json.loads(hp_file.read_text())
    grid[key] = [value]
    hp_file.write_text(json.dumps(grid))
    one_error_line(run(*train_args(example_dir, out, hp_file), "--restart"),
                   f"{hp_file}: key '{key}': value {json.dumps(value)} is out of range, expected one folder name: not "
                   "empty, not '.' or '..', no '/' or '\\', no control characters, at most 200 bytes")
    assert (victim / "precious.txt").read_text() == "keep me" and sorted(victim.iterdir()) == [victim / "precious.txt"]
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["predict", "-md", "m.h5", "-d", ".", "--batch-size", "0"],
     "Invalid value for '--batch-size': 0 is not in the range x>=1. (see 'dspl predict -h')"),
    (["devel-test", "-md", "m.h5", "-d", ".", "-l", "l.csv", "--batch-size", "-1"],
     "Invalid value for '--batch-size': -1 is not in the range x>=1. (see 'dspl devel-test -h')"),
    (["stats", "-md", "m.h5", "--runs", "0"],
     "Invalid value for '--runs': 0 is not in the range x>=1. (see 'dspl stats -h')"),
    (["train", "-d", "."], "Missing option '-md' / '--model-dir'. (see 'dspl train -h')"),
    (["no-such-command"], "No such command 'no-such-command'. (see 'dspl -h')"),
])
def test_click_usage_errors_are_one_line_with_status_1(args, message):
    one_error_line(run(*args), message)


def test_unusable_output_paths_are_one_line(example_dir, tmp_path, untrained_model, write_sine):
    hp_file = grid_file(tmp_path / "hp.json", 1, [0.001])
    (tmp_path / "file").write_text("in the way")
    one_error_line(run(*train_args(example_dir, tmp_path / "file" / "out", hp_file)),
                   f"{tmp_path / 'file' / 'out'}: cannot use it as the model directory (-md): {tmp_path / 'file'} is "
                   "a file, expected a directory")
    result = run(*train_args(example_dir, Path("/sys/dspl-out"), hp_file))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: /sys/dspl-out: cannot create the model directory (-md): ")
    one_error_line(run("export", "-s", str(untrained_model), "-o", str(tmp_path / "file" / "x")),
                   f"{tmp_path / 'file' / 'x'}: cannot use it as the export folder: {tmp_path / 'file'} is a file, "
                   "expected a directory")
    (untrained_model.parent / "test").write_text("in the way")
    write_sine(tmp_path / "audio" / "a.wav")
    one_error_line(run("predict", "-md", str(untrained_model), "-d", str(tmp_path / "audio")),
                   f"{untrained_model.parent / 'test' / 'test'}: cannot use it as the predictions folder: "
                   f"{untrained_model.parent / 'test'} is a file, expected a directory")


def test_a_directory_named_like_a_model_file_is_one_line(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    (tmp_path / "model.h5").mkdir()
    one_error_line(run("predict", "-md", str(tmp_path / "model.h5"), "-d", str(tmp_path)),
                   f"{tmp_path / 'model.h5'}: is a directory, expected a model file (model.h5 or model.ckpt)")
    (tmp_path / "model.tflite").mkdir()
    one_error_line(run("convert", "-s", str(tmp_path / "x.h5"), "-d", str(tmp_path / "model.tflite")),
                   f"Invalid value for '-d' / '--destination': File '{tmp_path / 'model.tflite'}' is a directory. "
                   "(see 'dspl convert -h')")


# --- item 7: no silent acceptance --------------------------------------------------------------------------------

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


def test_label_file_duplicates_are_reported(tmp_path, write_labels, caplog):
    from dspl.config import LabelParserRef
    from dspl.data.parsers import parse_label_file

    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", ""), ("train_a.wav", "low", ""),
                                                    ("devel_b.wav", "high", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        train, devel, _ = parse_label_file(labels, LabelParserRef.builtin())
    assert [e.path.name for e in train] == ["train_a.wav"] and len(devel) == 1
    assert caplog.messages == [f"{labels}: 1 repeated row(s) ignored (each file counts once): train_a.wav"]

    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", ""), ("train_a.wav", "high", "")])
    with pytest.raises(DsplError) as error:
        parse_label_file(labels, LabelParserRef.builtin())
    assert str(error.value) == (f"{labels}: train_a.wav has two labels, 'low' and 'high': expected one label per "
                                "file")


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


def test_predict_skips_and_lists_an_undecodable_file(untrained_model, tmp_path, write_sine, caplog):
    write_sine(tmp_path / "audio" / "a.wav", seconds=1.5)
    (tmp_path / "audio" / "b.wav").write_bytes(b"RIFF junk")
    write_sine(tmp_path / "audio" / "c.wav", seconds=2.5)
    with caplog.at_level(logging.WARNING, logger="dspl.workflows.predict"):
        result = run("predict", "-md", str(untrained_model), "-d", str(tmp_path / "audio"))
    assert result.exit_code == 0, result.output
    rows = read_csv(untrained_model.parent / "test" / "test" / "test.grouped.predictions.csv")
    assert [row["filename"] for row in rows] == ["a.wav", "c.wav"]
    assert len(caplog.messages) == 1 and caplog.messages[0].startswith(
        f"{untrained_model}: skipped 1 of 3 file(s) that cannot be decoded: {tmp_path / 'audio' / 'b.wav'}: cannot "
        "decode audio (")


# --- item 8: offline pretrained weights fail fast ----------------------------------------------------------------

def test_imagenet_weights_without_network_or_cache_fail_within_seconds(tmp_path, monkeypatch):
    import socket

    from huggingface_hub import constants

    from dspl.models.registry import create_backbone

    attempts = []

    def unreachable(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(DsplError) as error:
        create_backbone("mobilenetv3_small_050", "imagenet")
    assert time.monotonic() - start < 5
    assert attempts == [(constants.ENDPOINT.split("://")[1].split("/")[0].split(":")[0], 443)]
    assert str(error.value) == (
        "weights: 'imagenet' weights for 'mobilenetv3_small_050' are not available offline (OSError). They come "
        "from the Hugging Face hub repo 'timm/mobilenetv3_small_050.lamb_in1k': download it once with network "
        "access (e.g. `hf download timm/mobilenetv3_small_050.lamb_in1k`) into the HF cache (HF_HOME; it is used "
        "offline with HF_HUB_OFFLINE=1); or set weights to a local .pth/.pt/.bin/.safetensors file, or to '' for "
        "random initialisation")


# --- item 9: bounded memory for long files -----------------------------------------------------------------------

MEASURE = '''
import resource, sys
from dspl.loading import load_model
predictor = load_model(sys.argv[1])
predictor.predict(sys.argv[2])  # warm: model, plots and allocator reach their working size
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prediction = predictor.predict(sys.argv[3])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(prediction.times), (after - before) // 1024)
'''


def test_predicting_a_long_file_keeps_memory_flat(untrained_model, tmp_path, write_sine):
    """Four minutes of 48 kHz stereo: decoded whole it would take 92 MB as float32 before its mono mix and
    resampling; streamed, the peak grows by less than 40 MB over predicting a 3 s file."""
    write_sine(tmp_path / "short.wav", seconds=3.0, sample_rate=48000, channels=2)
    rng = np.random.default_rng(0)
    with sf.SoundFile(tmp_path / "long.wav", "w", 48000, 2, subtype="PCM_16") as f:
        for _ in range(240):
            f.write((0.1 * rng.standard_normal((48000, 2))).astype(np.float32))
    output = subprocess.run([sys.executable, "-c", MEASURE, str(untrained_model), str(tmp_path / "short.wav"),
                             str(tmp_path / "long.wav")], capture_output=True, text=True, check=True).stdout
    chunks, growth_mb = map(int, output.split())
    assert chunks == 479  # 1 s chunks every 0.5 s of 240 s
    assert growth_mb < 40
