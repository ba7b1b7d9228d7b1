"""Crash-safe outputs (issue 12): real kill -9s of `dspl train` and `dspl export` in child processes; nothing
lost, the next run resumes or finishes what was interrupted."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

from helpers import grid_file, kill_when, leftovers, output_of, run, signal_when, snapshot, spawn, train_args

from dspl.models.modelfile import read_checkpoint

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


def test_sigterm_during_training_says_what_was_kept_and_the_same_command_resumes(example_dir, tmp_path):
    """A scheduler's `kill` (a SLURM time limit): exit status 143 and Ctrl-C's line, not a silent exit 0."""
    hp_file, out = grid_file(tmp_path / "hp.json", 3, [0.001]), tmp_path / "out"
    run_dir = out / "models" / "example" / "run_config_0"
    process = spawn(*train_args(example_dir, out, hp_file))
    signal_when(process, (run_dir / "last.ckpt").is_file, signal.SIGTERM)
    assert process.wait(timeout=120) == 143, output_of(process)
    assert output_of(process).strip().splitlines()[-1] == (
        f"error: interrupted (SIGTERM) in configuration 0: kept its last epoch checkpoint {run_dir / 'last.ckpt'}; "
        "re-run the same command to resume")
    assert not (run_dir / "model.h5").exists() and leftovers(out) == []
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 0, result.output
    assert "configuration 0: resuming after epoch" in result.output


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


def export_args(model: Path, out: Path) -> list[str]:
    return ["export", "-s", str(model), "-o", str(out), "--format", "onnx", "--format", "saved_model"]


def staged(out: Path, relative: str) -> bool:
    return any((stage / relative).is_file() for stage in out.glob(".dspl-staging-*"))


def test_kills_during_export_keep_the_earlier_export(untrained_model_file, tmp_path, caplog):
    """Killed once when ONNX is staged and once when the SavedModel is: the earlier export stays as it was."""
    out, work = tmp_path / "export", Path(os.environ["TMPDIR"])
    assert run(*export_args(untrained_model_file, out)).exit_code == 0
    before = snapshot(out)
    assert sorted(before) == ["export_report.json", "model.onnx", "saved_model/fingerprint.pb",
                              "saved_model/saved_model.pb", "saved_model/variables/variables.data-00000-of-00001",
                              "saved_model/variables/variables.index"]
    killed = []
    for kill_point in ("model.onnx", "saved_model/saved_model.pb"):
        process = spawn(*export_args(untrained_model_file, out))
        kill_when(process, lambda: staged(out, kill_point))
        killed.append(process.pid)
        assert snapshot(out) == before  # nothing in place changed; the killed run's staging folder is hidden
        assert staged(out, kill_point) and list(work.glob(f"dspl-export-{process.pid}-*"))

    with caplog.at_level(logging.WARNING, logger="dspl.export.exporter"):
        assert run(*export_args(untrained_model_file, out)).exit_code == 0
    assert f"{out}: replacing export_report.json, model.onnx, saved_model/ of an earlier export" in caplog.messages
    assert sorted(snapshot(out)) == sorted(before) and leftovers(out) == []
    assert not [path for pid in killed for path in work.glob(f"dspl-*-{pid}-*")]
