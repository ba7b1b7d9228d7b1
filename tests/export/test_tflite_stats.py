"""`tflite-stats`: tensor details, parameter count, operator histogram, latency and the weights HDF5 file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from dspl.cli.main import cli
from dspl.errors import DsplError
from dspl.export.tflite_stats import WEIGHTS_FILE, tflite_stats


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A .tflite with one 3x3 convolution (3 -> 4 channels, bias) and one dense layer (4 -> 2, bias)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    weights = {"kernel": rng.standard_normal((3, 3, 3, 4)).astype(np.float32),
               "bias": rng.standard_normal(4).astype(np.float32),
               "dense": rng.standard_normal((4, 2)).astype(np.float32),
               "dense_bias": rng.standard_normal(2).astype(np.float32)}

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def model(x):
        y = tf.nn.relu(tf.nn.conv2d(x, weights["kernel"], 1, "SAME") + weights["bias"])
        return tf.nn.softmax(tf.matmul(tf.reduce_mean(y, axis=[1, 2]), weights["dense"]) + weights["dense_bias"])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()])
    path = tmp_path_factory.mktemp("stats") / "tiny.tflite"
    path.write_bytes(converter.convert())
    return path, weights


def test_stats_fields(tiny_model) -> None:
    path, weights = tiny_model
    stats = tflite_stats(path, runs=7, threads=1)
    assert stats["file_size_bytes"] == path.stat().st_size
    assert stats["parameters"] >= sum(w.size for w in weights.values())
    assert stats["parameters"] < sum(w.size for w in weights.values()) + 16  # plus a few shape constants
    assert stats["operator_histogram"]["CONV_2D"] == 1
    assert stats["operator_histogram"]["FULLY_CONNECTED"] == 1
    assert stats["operators"] == sum(stats["operator_histogram"].values())
    assert stats["inputs"][0]["shape"] == [1, 8, 8, 3] and stats["outputs"][0]["shape"] == [1, 2]
    assert any(t["shape"] == [1, 8, 8, 3] for t in stats["tensors"])
    latency = stats["latency"]
    assert latency["runs"] == 7 and 0 < latency["min_ms"] <= latency["median_ms"] <= latency["p90_ms"]


def test_weights_file_beside_the_model(tiny_model) -> None:
    path, weights = tiny_model
    stats = tflite_stats(path, runs=1)
    assert Path(stats["weights_file"]) == path.parent / WEIGHTS_FILE
    with h5py.File(path.parent / WEIGHTS_FILE, "r") as file:
        stored = [file[key][()] for key in file]
        assert all("name" in file[key].attrs for key in file)
    assert any(np.array_equal(array.ravel(), weights["dense_bias"]) for array in stored)
    assert any(array.size == weights["kernel"].size and np.allclose(np.sort(array.ravel()),
                                                                    np.sort(weights["kernel"].ravel()))
               for array in stored)


def test_cli_json_and_text(tiny_model) -> None:
    path, _ = tiny_model
    result = CliRunner().invoke(cli, ["tflite-stats", "-md", str(path), "--runs", "3", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert {"parameters", "file_size_bytes", "operator_histogram", "latency", "tensors"} <= set(stats)
    result = CliRunner().invoke(cli, ["tflite-stats", "-md", str(path), "--runs", "3"])
    assert result.exit_code == 0, result.output
    assert "parameters:" in result.output and "median" in result.output and "CONV_2D" in result.output
    assert f"tensors: {len(stats['tensors'])} (-v lists them)" in result.output
    listed = CliRunner().invoke(cli, ["tflite-stats", "-md", str(path), "--runs", "3", "-v"])
    rows = [line for line in listed.output.splitlines() if line.startswith("│")]
    assert len(rows) == len(stats["tensors"]) and "-v lists them" not in listed.output


def test_not_a_tflite_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(DsplError, match="not a TFLite model"):
        tflite_stats(bogus)
    result = CliRunner().invoke(cli, ["tflite-stats", "-md", str(tmp_path / "missing.tflite")])
    assert result.exit_code == 1 and "not found" in result.output


def _truncated(source: Path, folder: Path) -> Path:
    path = folder / "truncated.tflite"
    path.write_bytes(source.read_bytes()[:600])  # a download or copy cut short: LiteRT read past its end and crashed
    return path


def _bad_tensor_index(source: Path, folder: Path) -> Path:
    from dspl.export.tflite_file import pack, unpack

    tree = unpack(source)
    tree.subgraphs[0].operators[0].inputs[0] = 9999  # parses, names a tensor the model does not have
    path = folder / "bad_index.tflite"
    path.write_bytes(pack(tree))
    return path


@pytest.mark.parametrize("damage, message", [
    (_truncated, r"truncated.tflite: a damaged TFLite model file \(error: unpack_from requires a buffer of at least "),
    (_bad_tensor_index, r"bad_index.tflite: LiteRT cannot load it: .*[Ii]nvalid tensor index 9999"),
])
@pytest.mark.parametrize("command", ["tflite-stats", "benchmark"])
def test_a_damaged_model_is_one_line_naming_it(tiny_model, trained_model, tmp_path, damage, message, command):
    import re

    path = damage(tiny_model[0], tmp_path)
    args = ["-md", str(path)] if command == "tflite-stats" else ["-s", str(trained_model), "-e", str(tmp_path)]
    result = CliRunner().invoke(cli, [command, *args, "--runs", "1"])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1, result.output
    assert re.match(rf"error: {re.escape(str(tmp_path))}/{message}", result.output), result.output


def test_reading_a_model_loads_neither_tensorflow_nor_torch(tiny_model) -> None:
    """`tflite-stats` needs the schema and the interpreter only: LiteRT's, not TensorFlow's (5 s) or torch (3 s)."""
    path, _ = tiny_model
    code = ("import json, sys\nfrom dspl.cli.main import cli\ntry:\n"
            f"    cli(['tflite-stats', '-md', {str(path)!r}, '--runs', '1', '--json'])\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
