"""ONNX → TensorFlow (dspl.export.tf_convert): onnx2tf's sample file made from plots, and `convert` working
offline and on models trained from scratch (BatchNorm running statistics, eval mode).

DeepSpectrumLite's converter failed on from-scratch models (BatchNorm left in training mode); and onnx2tf
downloads a sample-image file unless it finds one. Here sockets are blocked for the whole conversion.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import (
    GUARD_ENV,
    child_tries_to_connect,
    install_child_network_guard,
    tiny_config,
)

from dspl.cli.main import cli
from dspl.config import ClassConfig
from dspl.export import calibration
from dspl.export.tflite_convert import run_isolated, tflite_predict
from dspl.export.tflite_file import custom_operators


def test_onnx2tf_sample_file_from_plots(tmp_path: Path) -> None:
    from dspl.export.tf_convert import ONNX2TF_SAMPLE_FILE, write_onnx2tf_samples

    plots = np.random.default_rng(0).uniform(0, 255, (3, 40, 50, 3)).astype(np.float32)
    path = write_onnx2tf_samples(tmp_path, plots)
    samples = np.load(path)
    assert path.name == ONNX2TF_SAMPLE_FILE and samples.shape == (20, 128, 128, 3) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_allclose(samples[3, 0, 0], plots[0, 0, 0] / 255, rtol=1e-6)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[tuple]]:
    """Make every connection, name lookup and datagram send raise; return the list of attempts.

    Creating a socket stays allowed: urllib3 probes IPv6 support by binding one to ::1 at import time.
    The TFLite conversion runs in a spawned child process, which does not inherit monkeypatches: a
    sitecustomize on PYTHONPATH blocks the same calls there, and after the test the attempts the children
    logged are appended to the list.
    """
    attempts: list[tuple] = []
    child_log = install_child_network_guard(tmp_path / "child_guard", monkeypatch)

    def refuse(*args, **kwargs):
        attempts.append(args[1:] if args and isinstance(args[0], socket.socket) else args)
        raise OSError("network access is blocked in this test")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    for name in ("create_connection", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, refuse)
    yield attempts
    if child_log.exists():
        attempts.extend(("child", line) for line in child_log.read_text().splitlines())


@pytest.fixture
def scratch_model(tmp_path: Path) -> tuple[Path, torch.nn.Module, dict]:
    """A from-scratch model (timm test_resnet, BatchNorm) whose BN layers carry non-trivial running statistics.

    Its head uses ARelu (DeepSpectrumLite's default activation), whose clamp(α) onnx2tf cannot take unfolded.
    """
    from dspl.models import create_model
    from dspl.models.modelfile import save_model_file

    # a validated configuration (every key, defaults filled in)
    hp = tiny_config(basemodel_name="test_resnet", weights="", image_height=32, image_width=32, num_units=8,
                 chunk_size=0.5, activation="arelu")
    classes = ClassConfig.from_dict({"a": "A", "b": "B"})
    torch.manual_seed(3)
    model = create_model(hp.model, classes.num_classes, in_chans=hp.spec.input_channels, pretrained=False)
    generator = torch.Generator().manual_seed(4)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms
    for layer in batch_norms:
        layer.running_mean.copy_(torch.randn(layer.num_features, generator=generator) * 0.5)
        layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) * 2 + 0.2)
        layer.num_batches_tracked.fill_(100)
    model.eval()
    return save_model_file(tmp_path / "model.h5", model, hp, classes), model, hp


@pytest.mark.slow
def test_convert_offline_from_scratch_model(scratch_model, tmp_path: Path, no_network: list) -> None:
    model_file, model, hp = scratch_model
    destination = tmp_path / "converted" / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", "-s", str(model_file), "-d", str(destination)])
    assert result.exit_code == 0, result.output
    assert no_network == []
    child_log = Path(os.environ[GUARD_ENV])
    assert not child_log.exists() or child_log.read_text() == ""  # nor did the conversion's child process try
    assert destination.is_file() and custom_operators(destination) == []
    plots = calibration.make_plots(hp.spec, calibration.synthetic_chunks(hp.spec, count=8, seed=7))
    with torch.no_grad():
        expected = model(torch.from_numpy(plots)).numpy()
        batch_mode = model.train()(torch.from_numpy(plots)).numpy()
    model.eval()
    scores = tflite_predict(destination, calibration.to_nhwc(plots))
    assert np.max(np.abs(scores - expected)) <= 1e-4
    assert np.max(np.abs(scores - batch_mode)) > 1e-3  # running statistics matter: train-mode BN differs


def test_blocked_network_is_really_blocked(no_network: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard stops onnx2tf's own download of its sample file (what dspl avoids by providing the file)."""
    from onnx2tf.utils.common_functions import download_test_image_data

    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception):
        download_test_image_data()
    assert no_network


def test_the_guard_reaches_the_spawned_conversion_child(no_network: list) -> None:
    """run_isolated (how conversions run) spawns a fresh interpreter: the block must hold there too."""
    pid, error = run_isolated(child_tries_to_connect, what="network probe")
    assert pid != os.getpid()
    assert error == "network access is blocked in this test (child process)"
    lines = Path(os.environ[GUARD_ENV]).read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{pid} ") and "127.0.0.1" in lines[0]
