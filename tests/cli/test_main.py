"""The command line (dspl.cli.main): the help listing, --version, usage errors as one line with status 1, and
`-vv` tracebacks."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from helpers import one_error_line, run

from dspl import __version__
from dspl.cli.main import COMMANDS, SHORT_HELP_LIMIT, cli
from dspl.errors import DsplError, Terminated

DOCUMENTED_COMMANDS = {"train", "predict", "devel-test", "stats", "convert", "tflite-stats", "create-preprocessor"}


def test_help_lists_the_documented_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands_section = result.output.split("Commands:", 1)[1]
    listed = set(re.findall(r"^  ([a-z-]+)\s", commands_section, flags=re.M))
    assert DOCUMENTED_COMMANDS <= listed
    assert listed == set(COMMANDS)


def test_the_listing_states_each_commands_own_help_once():
    """`dspl --help` shows what each command's own `--help` opens with, read from the one docstring."""
    listing = " ".join(CliRunner().invoke(cli, ["--help"]).output.split("Commands:", 1)[1].split())
    context = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command.name == name
        first_sentence = " ".join(command.get_short_help_str(SHORT_HELP_LIMIT).split())
        assert first_sentence.endswith(".") and f"{name} {first_sentence}" in listing, name


def test_version_flag():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


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
def test_click_usage_errors_are_one_line_with_status_1(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("m.h5", "l.csv"):
        (tmp_path / name).write_bytes(b"")  # paths are checked first: these exist, so the flag's error is the one
    one_error_line(run(*args), message)


# --- -vv: full tracebacks; otherwise one line -----------------------------------------------------------------
def run_dspl(*args: str) -> subprocess.CompletedProcess:
    """The installed program as a user runs it (a fresh process, so tracebacks reach stderr as they would)."""
    return subprocess.run([sys.executable, "-m", "dspl", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.slow
def test_a_user_error_is_one_line_without_vv_and_a_traceback_with_it(tmp_path):
    missing = tmp_path / "missing.h5"
    for flags in ([], ["-v"]):
        quiet = run_dspl(*flags, "stats", "-md", str(missing))
        assert quiet.returncode == 1
        assert quiet.stderr.strip().splitlines()[-1] == f"error: {missing}: model file not found"
        assert "Traceback" not in quiet.stderr + quiet.stdout
    loud = run_dspl("-vv", "stats", "-md", str(missing))
    assert loud.returncode == 1
    assert "Traceback (most recent call last):" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == f"dspl.errors.DsplError: {missing}: model file not found"


def test_vv_lets_the_error_propagate_in_process(tmp_path):
    result = CliRunner().invoke(cli, ["-vv", "stats", "-md", str(tmp_path / "missing.h5")])
    assert isinstance(result.exception, DsplError) and "model file not found" in str(result.exception)
    quiet = CliRunner().invoke(cli, ["stats", "-md", str(tmp_path / "missing.h5")])
    assert quiet.exit_code == 1 and isinstance(quiet.exception, SystemExit)


# --- Ctrl-C and file systems that cannot take a file: one line too --------------------------------------------
def _raising(exc: BaseException):
    def write_example_data(*_args, **_kwargs):
        raise exc
    return write_example_data


@pytest.mark.parametrize("exc, status, line", [
    (KeyboardInterrupt(), 130, "error: interrupted (Ctrl-C)"),
    (Terminated(), 143, "error: interrupted (SIGTERM)"),
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/a.wav"), 1,
     "error: /data/out/a.wav: No space left on device"),
    (OSError(errno.EACCES, "Permission denied", "/data/out"), 1, "error: /data/out: Permission denied"),
])
def test_an_interrupt_or_a_file_system_error_is_one_line(tmp_path, monkeypatch, exc, status, line):
    monkeypatch.setattr("dspl.data.example.write_example_data", _raising(exc))
    result = run("example-data", "-o", str(tmp_path / "out"))
    assert result.exit_code == status, result.output
    assert result.output.strip().splitlines() == [line]


def test_a_real_sigterm_is_an_interruption_and_the_handler_is_restored(tmp_path, monkeypatch):
    """A scheduler's `kill` during a command: its one line and status 143, not a silent death."""
    handler = signal.getsignal(signal.SIGTERM)

    def terminated(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr("dspl.data.example.write_example_data", terminated)
    result = run("example-data", "-o", str(tmp_path / "out"))
    assert (result.exit_code, result.output.strip().splitlines()) == (143, ["error: interrupted (SIGTERM)"])
    assert signal.getsignal(signal.SIGTERM) is handler


def test_an_os_error_that_is_a_bug_is_not_hidden(tmp_path, monkeypatch):
    monkeypatch.setattr("dspl.data.example.write_example_data", _raising(OSError(errno.EBADF, "Bad file descriptor")))
    result = run("example-data", "-o", str(tmp_path / "out"))
    assert isinstance(result.exception, OSError) and result.exception.errno == errno.EBADF
