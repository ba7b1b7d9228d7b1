"""How long a command takes to answer, as a user waits for it: a mistyped option or path, and the commands that
only read a file. Each command runs in a fresh process (imports included), this checkout and a baseline checkout
(an earlier commit, e.g. `git worktree add /tmp/base <commit>`) alternately, so both meet the same machine state.

Usage: python bench/cli_answer.py [--baseline DIR] [--runs 5]

The .tflite model is a small convolutional one built here with TensorFlow (what is timed is everything but the
model: imports, parsing, checks). Printed: median wall seconds per command, and the baseline's over this one's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_tflite(path: Path) -> Path:
    """A .tflite with one 3x3 convolution and a dense layer on 32x32x3 input."""
    import numpy as np
    import tensorflow as tf

    kernel = np.random.default_rng(0).standard_normal((3, 3, 3, 8)).astype(np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32)])
    def model(x):
        return tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME")), axis=[1, 2])

    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()]).convert())
    return path


def answer_seconds(source: Path, args: list[str], cwd: Path) -> float:
    """Wall seconds of `python -m dspl ARGS` with the dspl package of ``source`` (its exit status is not checked:
    the typos end with status 1)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dspl", *args], cwd=cwd, capture_output=True, timeout=600,
                   env={**os.environ, "PYTHONPATH": str(source)})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="A checkout of an earlier dspl to compare with.")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        tflite = tiny_tflite(work / "tiny.tflite")
        commands = {"fit, unknown option": ["fit", "--bogus"],
                    "fit, missing --config": ["fit", "--config", "missing.yaml"],
                    "fit, mistyped Trainer option": ["fit", "--trainer.max_epochz", "1"],
                    "train, unknown option": ["train", "--bogus"],
                    "tflite-stats": ["tflite-stats", "-md", str(tflite), "--runs", "1"]}
        sources = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.runs):
            for name, command in commands.items():
                for source_name, source in sources.items():
                    times.setdefault((name, source_name), []).append(answer_seconds(source, command, work))
    print(f"median wall seconds over {args.runs} runs (fresh processes, interleaved)")
    for name in commands:
        this = statistics.median(times[(name, "this")])
        line = f"  {name:30s} this {this:6.2f} s"
        if args.baseline:
            baseline = statistics.median(times[(name, "baseline")])
            line += f"   baseline {baseline:6.2f} s   {baseline / this:5.1f}x"
        print(line)


if __name__ == "__main__":
    main()
