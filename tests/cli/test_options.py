"""Options shared by the commands (dspl.cli.options): paths checked while the flags are parsed, before torch or
TensorFlow load; a model folder taken for the one model file in it; the global options after a command's name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import one_error_line, run, without_blocking

from dspl.cli.main import cli
from dspl.errors import DsplError

TYPOS = [
    (["predict", "-md", "nope.h5", "-d", "."], "nope.h5: model file not found"),
    (["predict", "-md", "m.h5", "-d", "nope"], "nope: no such audio file or directory"),
    (["predict", "-md", "m.h5", "-d", "nope/*.wav"], "nope/*.wav: the pattern matches no audio files"),
    (["predict", "-md", "nope/*/model.h5", "-d", "."], "nope/*/model.h5: the pattern matches no model file"),
    (["devel-test", "-md", "m.h5", "-d", "nope", "-l", "l.csv"], "nope: data directory not found"),
    (["devel-test", "-md", "m.h5", "-d", ".", "-l", "nope.csv"], "nope.csv: label file not found"),
    (["stats", "-md", "nope.h5"], "nope.h5: model file not found"),
    (["convert", "-s", "nope.h5", "-d", "x.tflite"], "nope.h5: model file not found"),
    (["export", "-s", "nope.h5", "-o", "out"], "nope.h5: model file not found"),
    (["tflite-stats", "-md", "nope.tflite"], "nope.tflite: TFLite model file not found"),
    (["explain", "-md", "nope.h5", "-d", ".", "-o", "out"], "nope.h5: model file not found"),
    (["report", "-md", "m.h5", "-d", "nope"], "nope: no such audio file or directory"),
    (["plot", "-hc", "nope.json", "-d", ".", "-o", "out"], "nope.json: hyper-parameter config not found"),
    (["create-preprocessor", "-hc", "nope.json", "-d", "x.tflite"], "nope.json: hyper-parameter config not found"),
    (["predict", "-md", "m.h5", "-d", ".", "-cc", "nope.json"], "nope.json: class config not found"),
    (["fit", "--config", "nope.yaml"], "dspl fit: nope.yaml: fit config not found (see 'dspl fit -h')"),
    (["fit", "--trainer.max_epochs", "1", "--bogus"], "dspl fit: unrecognized arguments: --bogus (see 'dspl fit -h')"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with the files the typo cases do not misspell (they only need to exist)."""
    monkeypatch.chdir(tmp_path)
    for name in ("m.h5", "l.csv"):
        (tmp_path / name).write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("args, message", TYPOS)
def test_a_mistyped_path_is_one_line(workdir, args, message):
    one_error_line(run(*args), message)


def test_a_mistyped_path_is_reported_before_torch_or_tensorflow_load(workdir):
    """What makes the answer take 0.2 s rather than 10 s: no command imports a heavy library before its flags."""
    code = ("import json, sys\nfrom dspl.cli.main import cli\nloaded = []\n"
            f"for args in {json.dumps([args for args, _ in TYPOS])}:\n"
            "    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
            "    loaded.append(sorted(m for m in ('torch', 'tensorflow', 'lightning', 'onnx') if m in sys.modules))\n"
            "print(json.dumps(loaded))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=workdir, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [[]] * len(TYPOS)
    assert done.stderr.splitlines() == [f"error: {message}" for _, message in TYPOS]


def test_a_model_folder_is_taken_for_its_model_file(tmp_path):
    folder = tmp_path / "run_config_0"
    folder.mkdir()
    (folder / "model.ckpt").write_bytes(b"")
    result = run("stats", "-md", str(folder))  # the one model file in the folder is named, then read
    assert result.output.splitlines()[0] == f"model: {folder / 'model.ckpt'}"
    (folder / "model.h5").write_bytes(b"")
    result = run("stats", "-md", str(folder))  # train's model.h5 where it sits beside its checkpoint
    assert result.output.splitlines()[0] == f"model: {folder / 'model.h5'}"


@pytest.mark.parametrize("command", ["convert", "export", "benchmark", "import-keras"])
def test_every_source_option_takes_the_folder_holding_the_model(tmp_path, command):
    folder = tmp_path / "run_config_0"
    folder.mkdir()
    (folder / "model.h5").write_bytes(b"")
    configs = [str(tmp_path / name) for name in ("hp.json", "classes.json")]
    for config in configs:
        Path(config).write_text("{}")
    rest = {"convert": ["-d", str(tmp_path / "x.tflite")], "export": ["-o", str(tmp_path / "out")],
            "benchmark": ["-e", str(tmp_path)],
            "import-keras": ["-hc", configs[0], "-cc", configs[1], "-o", str(tmp_path / "x.h5")]}
    result = run(command, "-s", str(folder), *rest[command])
    assert result.output.splitlines()[0] == f"model: {folder / 'model.h5'}"
    assert result.exit_code == 1 and result.output.splitlines()[1].startswith("error: ")  # then read: empty


def test_a_folder_without_exactly_one_model_file_is_one_line(tmp_path):
    one_error_line(run("stats", "-md", str(tmp_path)),
                   f"{tmp_path}: expected one model file (.h5, .hdf5, .ckpt) in the folder, found none: name the file")
    for name in ("a.h5", "b.ckpt", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    one_error_line(run("predict", "-md", str(tmp_path), "-d", str(tmp_path)),
                   f"{tmp_path}: expected one model file (.h5, .hdf5, .ckpt) in the folder, found a.h5, b.ckpt: "
                   "name the file")


@pytest.mark.parametrize("args", [["-vv", "stats"], ["stats", "-vv"], ["stats", "-v", "-v"], ["-v", "stats", "-v"]])
def test_verbosity_counts_before_and_after_the_command_name(tmp_path, args):
    """-vv lets a DsplError propagate (its traceback); the flags count wherever they are given."""
    result = CliRunner().invoke(cli, [*args, "-md", str(tmp_path / "missing.h5")])
    assert isinstance(result.exception, DsplError)


def test_one_v_is_not_two(tmp_path):
    result = CliRunner().invoke(cli, ["stats", "-v", "-md", str(tmp_path / "missing.h5")])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1


@pytest.mark.parametrize("args", [["--threads", "0", "stats"], ["stats", "--threads", "0"]])
def test_a_thread_count_below_one_is_a_usage_error(tmp_path, args):
    one_error_line(run(*args, "-md", str(tmp_path)),
                   "Invalid value for '--threads': 0 is not in the range x>=1. "
                   f"(see 'dspl{' stats' * (args[0] == 'stats')} -h')")


@pytest.mark.parametrize("args, message", [
    (["predict", "-md", "a.h5", "-d", ".", "-md", "m.h5"], "-md is given twice, as a.h5 and m.h5: give it once "
                                                           "(see 'dspl predict -h')"),
    (["example-data", "-o", "x", "--output=y"], "-o is given twice, as x and y: give it once (see 'dspl example-data "
                                                "-h')"),
    (["--threads", "1", "stats", "-md", "m.h5", "--threads", "2"], "--threads is given twice, as 1 and 2: give it "
                                                                    "once (see 'dspl stats -h')"),
    (["--threads", "1", "--threads", "2", "stats", "-md", "m.h5"], "--threads is given twice, as 1 and 2: give it "
                                                                    "once (see 'dspl -h')"),
])
def test_an_option_given_twice_with_two_values_is_one_line(workdir, args, message):
    """click keeps the last value silently: which one the user meant is theirs to say."""
    one_error_line(run(*args), message)


def test_an_option_repeated_with_its_value_and_repeatable_options_pass(workdir):
    from dspl.cli.options import refuse_repeated_options

    command = cli.get_command(None, "stats")
    ctx = command.make_context("stats", ["-md", "m.h5"])
    refuse_repeated_options(command, ctx, ["-md", "m.h5", "--model-dir", "m.h5", "-d", "m.h5", "-v", "-v", "--json",
                                           "--json"])


SPECIAL = [
    (["predict", "-md", "special", "-d", "."], "model file"),
    (["stats", "-md", "special"], "model file"),
    (["plot", "-hc", "special", "-d", ".", "-o", "out"], "hyper-parameter config"),
    (["predict", "-md", "m.h5", "-d", ".", "-hc", "special"], "hyper-parameter config"),
    (["predict", "-md", "m.h5", "-d", ".", "-cc", "special"], "class config"),
    (["devel-test", "-md", "m.h5", "-d", ".", "-l", "special"], "label file"),
    (["train", "-d", ".", "-md", "out", "-hc", "special", "-cc", "l.csv", "-l", "l.csv"], "hyper-parameter config"),
    (["train", "-d", ".", "-md", "out", "-hc", "l.csv", "-cc", "special", "-l", "l.csv"], "class config"),
    (["train", "-d", ".", "-md", "out", "-hc", "l.csv", "-cc", "l.csv", "-l", "special"], "label file"),
    (["search", "-d", ".", "-md", "out", "-hc", "special", "-cc", "l.csv", "-l", "l.csv"], "hyper-parameter config"),
    (["search", "-d", ".", "-md", "out", "-hc", "l.csv", "-cc", "special", "-l", "l.csv"], "class config"),
    (["search", "-d", ".", "-md", "out", "-hc", "l.csv", "-cc", "l.csv", "-l", "special"], "label file"),
    (["tflite-stats", "-md", "special"], "TFLite model file"),
]


@pytest.mark.parametrize("args, what", SPECIAL)
def test_a_named_pipe_given_for_a_file_is_refused_before_it_is_opened(workdir, args, what):
    os.mkfifo(workdir / "special")
    result = without_blocking(workdir / "special", run, *args)
    one_error_line(result, f"special: is a named pipe (FIFO), expected a regular file ({what})")
    assert sorted(p.name for p in workdir.iterdir()) == ["l.csv", "m.h5", "special"]  # nothing written


def test_a_device_and_a_symlink_loop_given_as_the_model_are_one_line(workdir):
    one_error_line(run("predict", "-md", "/dev/zero", "-d", "."),
                   "/dev/zero: is a device, expected a regular file (model file)")
    (workdir / "loop.h5").symlink_to("loop.h5")
    one_error_line(run("predict", "-md", "loop.h5", "-d", "."),
                   "loop.h5: cannot use it as the model file: Too many levels of symbolic links")
