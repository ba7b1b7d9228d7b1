"""`dspl fit`'s checks before LightningCLI loads (dspl.cli.fit): what the parser would refuse seconds later is
refused at once, and what it takes (its abbreviations, YAML given inline) passes on to it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import error_message

from dspl.cli.fit import check_arguments


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding the files and the folder the arguments name."""
    monkeypatch.chdir(tmp_path)
    for name in ("fit.yaml", "hp.json", "classes.json", "labels.csv"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "audio").mkdir()
    return tmp_path


@pytest.mark.parametrize("args", [
    ["--config", "fit.yaml", "--model.hp_config", "hp.json", "--model.class_config=classes.json",
     "--data.data_dir", "audio", "--data.label_file", "labels.csv", "--trainer.max_epochs", "3"],
    ["-c", "fit.yaml", "--print_config"],
    ["--print_config=skip_null", "--seed_everything", "-1", "--ckpt_path", "last"],
    ["--conf", "missing.yaml", "--trainer.max_epoch", "3", "--tr", "x"],  # abbreviations: the parser's to resolve
    ["--config", '{"trainer": {"max_epochs": 2}}', "--config", "trainer:\n  max_epochs: 2"],  # YAML content
    ["--trainer.devices+", "1", "--model.config.model.basemodel_name", "x", "-h", "--help"],
    ["--trainer.logger.init_args.save_dir", "x", "--trainer.callbacks+=x", "--data.num_work", "0"],
])
def test_what_the_parser_takes_passes(inputs: Path, args: list[str]):
    check_arguments(args)


@pytest.mark.parametrize("args, message", [
    (["--bogus"], "dspl fit: unrecognized arguments: --bogus (see 'dspl fit -h')"),
    (["--trainer.max_epochs", "3", "-x"], "dspl fit: unrecognized arguments: -x (see 'dspl fit -h')"),
    (["--train.max_epochs=3"], "dspl fit: unrecognized arguments: --train.max_epochs=3 (see 'dspl fit -h')"),
    (["--trainer.max_epochz", "1"], "dspl fit: unrecognized arguments: --trainer.max_epochz (see 'dspl fit -h')"),
    (["--model.hp_confg=x"], "dspl fit: unrecognized arguments: --model.hp_confg=x (see 'dspl fit -h')"),
    (["--data.bogus.help"], "dspl fit: unrecognized arguments: --data.bogus.help (see 'dspl fit -h')"),
    (["-c", "nope.yaml"], "dspl fit: nope.yaml: fit config not found (see 'dspl fit -h')"),
    (["--model.hp_config=nope.json"], "dspl fit: nope.json: hyper-parameter config not found (see 'dspl fit -h')"),
    (["--model.class_config", "audio"],
     "dspl fit: audio: is a directory, expected a regular file (class config) (see 'dspl fit -h')"),
    (["--data.label_file", "nope.csv"], "dspl fit: nope.csv: label file not found (see 'dspl fit -h')"),
    (["--data.data_dir", "nope"], "dspl fit: nope: data directory not found (see 'dspl fit -h')"),
    (["--ckpt_path", "nope.ckpt"], "dspl fit: nope.ckpt: checkpoint not found (see 'dspl fit -h')"),
    (["--data.data_dir", "labels.csv"],
     "dspl fit: labels.csv: is not a directory (data directory) (see 'dspl fit -h')"),
])
def test_a_typo_is_one_line(inputs: Path, args: list[str], message: str):
    assert error_message(check_arguments, args) == message


def test_a_named_pipe_as_the_config_is_refused_unopened(inputs: Path):
    """The parser would wait on it for a writer forever."""
    os.mkfifo(inputs / "fifo.yaml")
    assert error_message(check_arguments, ["--config", "fifo.yaml"]) == \
        "dspl fit: fifo.yaml: is a named pipe (FIFO), expected a regular file (fit config) (see 'dspl fit -h')"
