"""dspl.files: atomic writes, commits finished after a kill, leftovers of dead processes removed, output paths
that cannot be used are one line."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import (grid_file, one_error_line, outside, partial_files, run, snapshot, tiny_config, train_args,
                     write_grid)

from dspl.errors import DsplError
from dspl.files import (
    JOURNAL,
    NAME_MAX,
    atomic_path,
    clean_stale,
    commit,
    file_system_message,
    naming,
    regular_file,
    save_array,
    save_figure,
    staging_dir,
    temporary_path,
    work_dir,
    write_atomically,
)


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


def test_a_long_destination_name_gets_a_temporary_that_fits(tmp_path):
    target = tmp_path / ("é" * 100 + "x" * 50 + ".png")  # 254 bytes: fits, its temporary's name would not uncut
    write_atomically(target, b"image")
    assert target.read_bytes() == b"image" and [p.name for p in tmp_path.iterdir()] == [target.name]
    assert len(temporary_path(target).name.encode()) <= NAME_MAX


def test_a_name_over_the_limit_is_an_error_naming_the_destination(tmp_path):
    target = tmp_path / ("x" * 252 + ".png")
    with pytest.raises(OSError) as error:
        write_atomically(target, b"image")
    assert (error.value.errno, error.value.filename) == (errno.ENAMETOOLONG, str(target))
    assert file_system_message(error.value) == f"{target}: File name too long"
    assert list(tmp_path.iterdir()) == []


def _socket_file(path):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


@pytest.mark.parametrize("kind, make", [
    ("a named pipe (FIFO)", os.mkfifo),
    ("a socket", _socket_file),
    ("a directory", os.mkdir),
])
def test_only_a_regular_file_is_taken_where_a_file_is_read(tmp_path, kind, make):
    path = tmp_path / "model.h5"
    made = make(path)
    try:
        with pytest.raises(DsplError) as error:
            regular_file(path, "model file")
        assert str(error.value) == f"{path}: is {kind}, expected a regular file (model file)"
    finally:
        if made is not None:
            made.close()


def _device_like_dev_null(path):
    if os.geteuid() != 0:
        pytest.skip("making a device file needs root (CI runs as root)")
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))


@pytest.mark.parametrize("kind, make", [
    ("a named pipe (FIFO)", os.mkfifo),
    ("a socket", _socket_file),
    ("a device", _device_like_dev_null),
])
def test_an_output_never_replaces_a_pipe_socket_or_device(tmp_path, kind, make):
    """A rename onto one would replace it silently: as root, `-d /dev/null` would take the system's /dev/null."""
    target = tmp_path / "model.tflite"
    made = make(target)
    try:
        message = (f"{target}: is {kind}; an output replaces only a regular file: name a file or a new path")
        with pytest.raises(DsplError) as error:
            write_atomically(target, b"model")
        assert str(error.value) == message
        stage = staging_dir(tmp_path)
        (stage / "model.tflite").write_bytes(b"model")
        with pytest.raises(DsplError) as error:
            commit({stage / "model.tflite": target})
        assert str(error.value) == message
        assert not stat.S_ISREG(os.lstat(target).st_mode) and (stage / "model.tflite").read_bytes() == b"model"
        grid = write_grid(tmp_path / "hp.json", tiny_config())
        one_error_line(run("create-preprocessor", "-hc", str(grid), "-d", str(target)), message)
        assert not stat.S_ISREG(os.lstat(target).st_mode)
    finally:
        if made is not None:
            made.close()


def test_a_device_a_symlink_loop_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(DsplError, match="^/dev/zero: is a device, expected a regular file \\(label file\\)$"):
        regular_file("/dev/zero", "label file")
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    with pytest.raises(DsplError) as error:
        regular_file(loop, "audio file")
    assert str(error.value) == f"{loop}: cannot use it as the audio file: Too many levels of symbolic links"
    with pytest.raises(DsplError, match="nope.json: file not found"):
        regular_file(tmp_path / "nope.json", "file")
    (tmp_path / "real.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    assert regular_file(tmp_path / "link.json", "file") == tmp_path / "link.json"


def test_writes_to_a_full_disk_name_their_destination_and_keep_the_old_files(mounts):
    from matplotlib.figure import Figure

    disk = mounts.tmpfs("disk")
    write_atomically(disk / "earlier.csv", b"earlier output")
    (disk / "plot.png").write_bytes(b"old plot")
    mounts.fill(disk)
    before = snapshot(disk)
    figure = Figure(figsize=(8, 8))
    figure.subplots().imshow(np.random.default_rng(0).random((256, 256)))
    writes = [(disk / "plot.png", lambda: save_figure(figure, disk / "plot.png")),
              (disk / "map.npy", lambda: save_array(disk / "map.npy", np.ones((256, 256), np.float32))),
              (disk / "earlier.csv", lambda: write_atomically(disk / "earlier.csv", b"x" * 100_000))]
    for destination, write in writes:
        with pytest.raises(OSError) as error:
            write()
        assert file_system_message(error.value) == f"{destination}: No space left on device"
    assert snapshot(disk) == before and partial_files(disk) == []


def test_a_library_that_reports_a_full_disk_otherwise_gets_enospc_too(mounts):
    disk = mounts.tmpfs("disk")
    mounts.fill(disk)
    with pytest.raises(OSError) as error, naming(disk / "model.ckpt"):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
    assert (error.value.errno, error.value.filename) == (errno.ENOSPC, str(disk / "model.ckpt"))
    with pytest.raises(RuntimeError), naming(Path("/") / "model.ckpt"):  # a disk with room: the error as it was
        raise RuntimeError("a bug")


def test_a_read_only_file_system_is_named_and_left_as_it_was(mounts, tmp_path):
    disk = mounts.tmpfs("disk")
    write_atomically(disk / "model.tflite", b"earlier")
    mounts.read_only(disk)
    around = outside(tmp_path, disk)
    with pytest.raises(OSError) as error:
        write_atomically(disk / "model.tflite", b"new")
    assert file_system_message(error.value) == f"{disk / 'model.tflite'}: Read-only file system"
    assert (disk / "model.tflite").read_bytes() == b"earlier" and outside(tmp_path, disk) == around


def test_other_os_errors_are_no_user_error():
    assert file_system_message(OSError(errno.EBADF, "Bad file descriptor")) is None
    assert file_system_message(OSError(errno.EROFS, "Read-only file system")) == "Read-only file system"


def test_a_figure_titled_with_glyphs_the_font_lacks_is_saved_without_warnings(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.suptitle("unicode_日本.wav")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_figure(figure, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0 and not caught
