"""dspl.files: atomic writes, commits finished after a kill, leftovers of dead processes removed, output paths
that cannot be used are one line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import grid_file, one_error_line, run, train_args

from dspl.files import JOURNAL, atomic_path, clean_stale, temporary_path, work_dir, write_atomically


def test_write_atomically_replaces_the_whole_file(tmp_path):
    target = tmp_path / "sub" / "model.tflite"
    write_atomically(target, b"first")
    write_atomically(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.tflite"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


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


def test_unusable_output_paths_are_one_line(example_dir, tmp_path, untrained_model_file, write_sine):
    hp_file = grid_file(tmp_path / "hp.json", 1, [0.001])
    (tmp_path / "file").write_text("in the way")
    one_error_line(run(*train_args(example_dir, tmp_path / "file" / "out", hp_file)),
                   f"{tmp_path / 'file' / 'out'}: cannot use it as the model directory (-md): {tmp_path / 'file'} is "
                   "a file, expected a directory")
    result = run(*train_args(example_dir, Path("/sys/dspl-out"), hp_file))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: /sys/dspl-out: cannot create the model directory (-md): ")
    one_error_line(run("export", "-s", str(untrained_model_file), "-o", str(tmp_path / "file" / "x")),
                   f"{tmp_path / 'file' / 'x'}: cannot use it as the export folder: {tmp_path / 'file'} is a file, "
                   "expected a directory")
    (untrained_model_file.parent / "test").write_text("in the way")
    write_sine(tmp_path / "audio" / "a.wav")
    one_error_line(run("predict", "-md", str(untrained_model_file), "-d", str(tmp_path / "audio")),
                   f"{untrained_model_file.parent / 'test' / 'test'}: cannot use it as the predictions folder: "
                   f"{untrained_model_file.parent / 'test'} is a file, expected a directory")
