"""A quiet terminal: without -v no command lets TensorFlow's, LiteRT's or Lightning's own chatter through (the
lines users saw: absl's W0000/I0000 lines, the converter's notes, deprecation warnings naming a dependency's file).

Each command runs in its own process, as a user runs it, so that what native code writes to the terminal's file
descriptors is seen too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DSL_MODELS, TINY

from dspl.data.example import example_hp

CHATTER = re.compile(r"[WIE]0000 |loop_optimizer|Ignored output_format|Ignored drop_control_dependency|MLIR V1|"
                     r"absl::InitializeLog|tensor_shape_from_node_def_name|LeafSpec|site-packages|\.py:\d+")


def dspl(*args: str, cwd: Path) -> str:
    """The terminal output (stdout and stderr) of a successful `dspl ARGS`."""
    done = subprocess.run([sys.executable, "-m", "dspl", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def assert_quiet(output: str) -> None:
    noisy = [line for line in output.splitlines() if CHATTER.search(line)]
    assert not noisy, "\n".join(noisy)


@pytest.fixture(scope="module")
def tiny_grid(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quiet") / "hp_config.json"
    path.write_text(json.dumps({k: [v] for k, v in {**example_hp(), **TINY, "epochs": 1}.items()}), encoding="utf-8")
    return path


def test_model_commands_are_quiet(trained_model: Path, example_dir: Path, tmp_path: Path):
    audio, labels = str(example_dir / "audio"), str(example_dir / "label.csv")
    model, tflite = str(trained_model), str(tmp_path / "model.tflite")
    for args in (["predict", "-md", model, "-d", audio, "-o", str(tmp_path / "predictions")],
                 ["devel-test", "-md", model, "-d", audio, "-l", labels],
                 ["convert", "-s", model, "-d", tflite],
                 ["export", "-s", model, "-o", str(tmp_path / "exported"), "--end-to-end"],
                 ["stats", "-md", model, "--runs", "2"],
                 ["tflite-stats", "-md", tflite, "--runs", "2"]):
        assert_quiet(dspl(*args, cwd=tmp_path))


def test_training_is_quiet(example_dir: Path, tiny_grid: Path, tmp_path: Path):
    audio, labels, classes = str(example_dir / "audio"), str(example_dir / "label.csv"), str(example_dir /
                                                                                           "class_config.json")
    assert_quiet(dspl("train", "-d", audio, "-md", str(tmp_path / "out"), "-hc", str(tiny_grid), "-cc", classes,
                      "-l", labels, cwd=tmp_path))
    without_devel = tmp_path / "no_devel.csv"  # training without validation: dspl's warning, not Lightning's
    lines = (example_dir / "label.csv").read_text(encoding="utf-8").splitlines()
    without_devel.write_text("\n".join(line for line in lines if not line.startswith("devel")) + "\n", encoding="utf-8")
    output = dspl("train", "-d", audio, "-md", str(tmp_path / "out2"), "-hc", str(tiny_grid), "-cc", classes,
                  "-l", str(without_devel), cwd=tmp_path)
    assert_quiet(output)
    assert "the devel partition is empty: training runs without validation" in output
    assert_quiet(dspl("fit", "--model.hp_config", str(tiny_grid), "--model.class_config", classes,
                      "--data.data_dir", audio, "--data.label_file", labels, "--trainer.max_epochs", "1",
                      "--trainer.default_root_dir", str(tmp_path / "runs"), cwd=tmp_path))


def test_deepspectrumlite_models_are_quiet(tmp_path: Path):
    model = tmp_path / "squeezenet_v1_0" / "model.h5"
    model.parent.mkdir()
    model.write_bytes((DSL_MODELS / "squeezenet_v1" / "model.h5").read_bytes())
    configs = ["-hc", str(DSL_MODELS / "squeezenet_v1" / "hp_config.json"), "-cc",
               str(DSL_MODELS / "class_config.json")]
    audio = str(DSL_MODELS / "audio")
    for args in (["predict", "-md", str(model), "-d", audio, *configs],
                 ["devel-test", "-md", str(model), "-d", audio, "-l", str(DSL_MODELS / "label.csv"), *configs],
                 ["import-keras", "-s", str(model), *configs, "-o", str(tmp_path / "ported.h5")],
                 ["convert", "-s", str(model), "-d", str(tmp_path / "keras.tflite")],
                 ["stats", "-md", str(model), "--runs", "2"]):
        assert_quiet(dspl(*args, cwd=tmp_path))
