"""Shared fixtures: a small example data set (written once per session), writers of sine WAV files, and small
models (trained or untrained) that tests of several packages use."""

from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import soundfile as sf
from helpers import CLASS_DICT, spread_model_file, tiny_config, torch_threads, untrained_model


def sine(frequency: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine of `seconds` (rounded down to whole samples)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture(autouse=True)
def restored_thread_policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A test that calls dspl.threads.configure, or runs a command with --threads in this process, applies a
    thread policy to the whole worker (torch's count, the applied policy and CPU share, the runtimes' environment
    that child processes inherit): undone after it, so that the next test meets the policy the worker started
    with (a count of 3 left by one test was printed by another's `stats`)."""
    import torch

    from dspl import threads

    for name in (*threads.THREAD_VARIABLES, threads.APPLIED_ENV, threads.WAIT_VARIABLE, threads.SPIN_VARIABLE):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_applied", list(threads._applied))
    share, count = dict(vars(threads._share)), torch.get_num_threads()
    yield
    vars(threads._share).update(share)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@pytest.fixture(scope="session", autouse=True)
def private_tempdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Temporary files of the code under test (TensorFlow's autograph modules, export work folders, child
    processes) go to one folder that is removed after the session, not into the system's /tmp."""
    path = tmp_path_factory.mktemp("tempdir")
    previous, previous_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(path), str(path)
    yield path
    tempfile.tempdir = previous
    if previous_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = previous_env
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def example_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example data set with 3 training and 1 devel/test file per class (9 + 3 + 3 files)."""
    from dspl.data.example import write_example_data

    return write_example_data(tmp_path_factory.mktemp("example"), files_per_class=3, seed=0)


@pytest.fixture
def write_sine() -> Callable[..., Path]:
    """write_sine(path, frequency=1000, seconds=1.0, sample_rate=16000, channels=1, amplitude=0.5,
    subtype=None) writes a sine file (format from the suffix) and returns its path."""

    def write(path: Path, frequency: float = 1000.0, seconds: float = 1.0, sample_rate: int = 16000,
              channels: int = 1, amplitude: float = 0.5, subtype: str | None = None) -> Path:
        samples = sine(frequency, seconds, sample_rate, amplitude)
        data = np.stack([samples] * channels, axis=1) if channels > 1 else samples
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data, sample_rate, subtype=subtype)
        return path

    return write


@pytest.fixture
def write_labels() -> Callable[..., Path]:
    """write_labels(path, rows, header="filename,label,duration_frames") writes a label CSV."""

    def write(path: Path, rows: list[tuple], header: str = "filename,label,duration_frames") -> Path:
        lines = [header] + [",".join(str(field) for field in row) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def trained_model(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.h5 of a tiny model (timm's test_efficientnet, 32x32 plots) trained by `dspl train` on the example set."""
    import json

    from click.testing import CliRunner

    from dspl.cli.main import cli

    grid = json.loads((example_dir / "hp_config.json").read_text())
    grid.update(basemodel_name=["test_efficientnet"], image_width=[32], image_height=[32], epochs=[1],
                batch_size=[8], num_units=[8])
    hp_file = tmp_path_factory.mktemp("tiny") / "hp_config.json"
    hp_file.write_text(json.dumps(grid))
    out = tmp_path_factory.mktemp("trained")
    with torch_threads(1):  # the same model however busy the machine is
        result = CliRunner().invoke(cli, ["train", "-d", str(example_dir / "audio"), "-md", str(out), "-hc",
                                          str(hp_file), "-cc", str(example_dir / "class_config.json"),
                                          "-l", str(example_dir / "label.csv")])
    assert result.exit_code == 0, result.output
    model = out / "models" / grid["tb_experiment"][0] / f"{grid['tb_run_id'][0]}_config_0" / "model.h5"
    assert model.is_file()
    return model


@pytest.fixture
def untrained_model_file(tmp_path: Path) -> Path:
    """A fresh untrained tiny model file per test (`tmp_path/model/model.h5`; outputs go beside it)."""
    return spread_model_file(tmp_path / "model" / "model.h5", tiny_config(), CLASS_DICT)


@pytest.fixture(scope="module")
def spread_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained categorical model whose scores vary clearly between the chunks of a file (one per module)."""
    return spread_model_file(tmp_path_factory.mktemp("spread") / "model.h5", tiny_config(), CLASS_DICT)


@pytest.fixture(scope="session")
def band_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model.h5, example dir): test_efficientnet on 64x64 plots, 6 files per class, 4 epochs (about 15 s), in
    float32 on every CPU (bf16 on one with AMX trains another model, not always as far in 4 epochs)."""
    import json

    from dspl.data.example import write_example_data
    from dspl.workflows.train import TrainingData, TrainOptions, train

    data = write_example_data(tmp_path_factory.mktemp("band_data"), files_per_class=6, seed=0)
    grid = json.loads((data / "hp_config.json").read_text())
    grid.update(basemodel_name=["test_efficientnet"], epochs=[4], batch_size=[8], num_units=[8],
                augment_cutmix=[False], augment_specaug=[False])
    hp_file = data / "band_hp.json"
    hp_file.write_text(json.dumps(grid))
    out = tmp_path_factory.mktemp("band_model")
    result = train(TrainingData(data / "audio", data / "label.csv"), out, hp_file, data / "class_config.json",
                   TrainOptions(mixed_precision=False))[0]
    assert result.test["test/uar"] >= 0.8
    return result.model_file, data


@pytest.fixture
def tiny_loaded():
    """A LoadedModel of tiny_config (4 units, 2 classes) with random weights and its plots."""
    from dspl.config import ClassConfig
    from dspl.features import PlotTransform
    from dspl.models import LoadedModel

    config = tiny_config(num_units=4)
    classes = ClassConfig.from_dict({"a": "A", "b": "B"})
    return LoadedModel(untrained_model(config, 2), PlotTransform(config.spec).eval(), config, classes)


class Mounts:
    """tmpfs file systems mounted for one test (real ENOSPC and EROFS), each unmounted when the test ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.points: list[Path] = []

    def tmpfs(self, name: str, size: str = "4m") -> Path:
        """A fresh empty tmpfs of ``size`` at folder/name; the test is skipped where mounting is not allowed."""
        if os.geteuid() != 0:
            pytest.skip("needs root to mount a tmpfs (a full or read-only file system); CI runs the tests as root")
        point = self.folder / name
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount is not allowed here ({done.stderr.strip()}); CI runs the tests as root")
        self.points.append(point)
        return point

    @staticmethod
    def fill(point: Path) -> None:
        """Fill the file system of ``point`` to its last block (a file `filler`): the next write fails with ENOSPC."""
        block = b"\0" * 65536
        with open(point / "filler", "wb", buffering=0) as handle:
            while True:
                try:
                    handle.write(block)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
            while True:  # the last partial block
                try:
                    handle.write(b"\0")
                except OSError:
                    break
        assert os.statvfs(point).f_bavail == 0

    @staticmethod
    def read_only(point: Path) -> None:
        """Remount ``point`` read-only (what it holds stays readable)."""
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    def unmount_all(self) -> None:
        """Unmount every file system of the test; one a leftover handle keeps busy (a failed writer's file, held
        until it is collected) is detached lazily, so the mount never outlives the test."""
        gc.collect()
        for point in reversed(self.points):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", str(point)], check=True)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    """Mount tmpfs file systems under tmp_path (see Mounts); all are unmounted after the test."""
    created = Mounts(tmp_path)
    yield created
    created.unmount_all()
