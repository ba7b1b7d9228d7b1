"""Atomic writes: readers never see a half-written file and failures leave nothing behind."""

import pytest

from dspl.files import atomic_path, write_atomically


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
