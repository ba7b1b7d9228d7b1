"""Quiet by default (dspl.quiet): a command that loads TensorFlow prints no native start-up chatter unless -vv
asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_config, write_grid

NATIVE_CHATTER = ("Unable to register", "computation placer", "absl::InitializeLog", "cuda")


def run_dspl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dspl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_tensorflow_chatter_only_with_vv(tmp_path):
    grid = write_grid(tmp_path / "hp.json", tiny_config())
    quiet = run_dspl("create-preprocessor", "-hc", str(grid), "-d", str(tmp_path / "p.tflite"), cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == f"wrote {tmp_path / 'p.tflite'}"
    assert not [line for line in quiet.stderr.splitlines() if any(word in line for word in NATIVE_CHATTER)], \
        quiet.stderr
    loud = run_dspl("-vv", "create-preprocessor", "-hc", str(grid), "-d", str(tmp_path / "q.tflite"), cwd=tmp_path)
    assert loud.returncode == 0 and any(word in loud.stderr for word in NATIVE_CHATTER)


@pytest.mark.slow
@pytest.mark.parametrize("level, chatter", [(None, False), ("0", True)])
def test_import_dspl_silences_tensorflow_unless_the_user_chose_its_log_level(level, chatter):
    """A script or notebook that imports dspl, then uses a Keras model (TensorFlow), sees none of its start-up
    lines; TF_CPP_MIN_LOG_LEVEL set by the user is left to do what it says."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DSPL_QUIET")}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    result = subprocess.run([sys.executable, "-c", "import dspl, tensorflow; tensorflow.constant(1.0).numpy()"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    assert any(word in result.stderr for word in NATIVE_CHATTER) == chatter, result.stderr


@pytest.mark.slow
def test_lightning_product_tips_are_dropped_even_with_v():
    program = ("from dspl.quiet import set_verbosity\n"
               "set_verbosity(1)\n"
               "from lightning.fabric.utilities.rank_zero import rank_zero_info\n"
               "rank_zero_info('💡 Tip: For seamless cloud logging, try installing litlogger')\n"
               "rank_zero_info('GPU available: False, used: False')\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "GPU available: False" in result.stderr and "Tip" not in result.stderr
