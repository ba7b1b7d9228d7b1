"""`dspl stats` of a DeepSpectrumLite Keras model (dspl.legacy.keras_stats)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import DSL_MODELS, run


def test_stats_of_a_keras_model(tmp_path):
    result = run("stats", "-md", str(DSL_MODELS / "squeezenet_v1" / "model.h5"), "--runs", "2", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output[result.output.index("{"):])
    # SqueezeNet 1.1 without its top (722,496) + Dense 512 -> 16 (8,208) + Dense 16 -> 3 (51)
    assert stats["params_total"] == 722_496 + 8_208 + 51
    assert stats["input_shape"] == [1, 32, 32, 3] and stats["flops"] > 0
    assert sum(row["params"] for row in stats["layers"]) == stats["params_total"]


@pytest.mark.slow
def test_the_keras_latency_runs_on_the_threads_dspl_gives_tensorflow(tmp_path):
    """Set before TensorFlow's runtime starts (a fresh process): the count dspl decided (here the user's), shown
    with the figure as for a dspl model."""
    model = str(DSL_MODELS / "squeezenet_v1" / "model.h5")
    done = subprocess.run([sys.executable, "-m", "dspl", "--threads", "1", "stats", "-md", model, "--runs", "2",
                           "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    latency = json.loads(done.stdout[done.stdout.index("{"):])["latency"]
    assert latency["threads"] == 1 and latency["runs"] == 2
