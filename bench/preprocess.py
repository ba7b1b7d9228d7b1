"""Preprocessing throughput: chunks per second of dspl's torch plots vs the TensorFlow reference, side by side.

Usage: python bench/preprocess.py [--hc configs/hp_config.json] [--seconds 3] [--batch-sizes 1 64] [--threads N]

The configuration is the given grid's first one with 2 s chunks (the DESIGN.md default: 2 s at 16 kHz ->
224x224 plots). The TF reference (dspl.export.tf_reference.TFPlotPipeline, tf.signal/tf.image as
DeepSpectrumLite computed its plots) stands in for DeepSpectrumLite's pipeline; target: torch >= 10x on CPU.

The script re-runs itself once with two environment settings that only matter to torch: glibc's mmap/trim
thresholds raised (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_: else a batch of 64 plots, 38 MB, pays page
faults on every call while TensorFlow's own allocator keeps its memory) and OMP_WAIT_POLICY=PASSIVE (else
torch's OpenMP threads spin and collapse, 10-100x slower, when other processes share the cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUN_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "8589934592",
           "OMP_WAIT_POLICY": "PASSIVE"}


def measure(step: Callable[[], object], batch_size: int, seconds: float) -> float:
    """Chunks per second of ``step`` (one batch) after a warm-up, timed for at least ``seconds``."""
    step()
    step()
    runs, start = 0, time.perf_counter()
    while True:
        step()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            return runs * batch_size / elapsed


def torch_step(hp: dict, audio: np.ndarray, device: str) -> Callable[[], object]:
    """One batch through PlotTransform on ``device`` (synchronised, so GPU timings are complete)."""
    import torch

    from dspl.features import PlotTransform

    transform = PlotTransform.from_hp(hp).to(device).eval()
    batch = torch.from_numpy(audio).to(device)

    def step() -> object:
        with torch.inference_mode():
            out = transform(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return step


def tf_step(hp: dict, audio: np.ndarray) -> Callable[[], object] | str:
    """One batch through the TF reference, or the reason it is unavailable."""
    try:
        import tensorflow as tf

        from dspl.export.tf_reference import TFPlotPipeline
    except ImportError as exc:
        return f"TF reference unavailable ({exc})"
    pipeline = TFPlotPipeline.from_hp(hp)
    batch = tf.constant(audio)
    return lambda: pipeline(batch).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hc", type=Path, default=ROOT / "configs" / "hp_config.json", help="hyper-parameter grid")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch and TF (0: their defaults)")
    args = parser.parse_args()
    if any(os.environ.get(key) != value for key, value in RUN_ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **RUN_ENV})

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            import tensorflow as tf
        except ImportError:
            pass
        else:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from dspl.config import load_config
    from dspl.data.chunking import chunk_samples

    hp = load_config(args.hc)
    hp.update(chunk_size=2.0, chunk_hop_size=1.0)
    num_samples = chunk_samples(hp)[0]
    print(f"config: {args.hc} [0] with 2 s chunks: {hp['sample_rate']} Hz, {num_samples} samples -> "
          f"{hp['image_height']}x{hp['image_width']} {hp['color_map']}, mel={hp['mel_scale']} db={hp['db_scale']}, "
          f"resize {hp['resize_method']} anti_alias={hp['anti_alias']}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; TF threads: "
          f"{args.threads or 'default'}; {os.cpu_count()} CPUs; env: "
          + " ".join(f"{key}={value}" for key, value in RUN_ENV.items()))
    rng = np.random.default_rng(0)
    rows = []
    for batch_size in args.batch_sizes:
        audio = (0.1 * rng.standard_normal((batch_size, num_samples))).astype(np.float32)
        torch_cps = measure(torch_step(hp, audio, "cpu"), batch_size, args.seconds)
        step = tf_step(hp, audio)
        tf_cps = measure(step, batch_size, args.seconds) if callable(step) else None
        rows.append(("cpu", batch_size, torch_cps, tf_cps))
        if not callable(step):
            print(step)
        if torch.cuda.is_available():
            rows.append(("cuda", batch_size, measure(torch_step(hp, audio, "cuda"), batch_size, args.seconds), None))

    print(f"\n{'device':<7}{'batch':>6}{'torch chunks/s':>16}{'TF ref chunks/s':>17}{'torch/TF':>10}")
    for device, batch_size, torch_cps, tf_cps in rows:
        tf_text = f"{tf_cps:17.1f}" if tf_cps else f"{'-':>17}"
        ratio = f"{torch_cps / tf_cps:9.1f}x" if tf_cps else f"{'-':>10}"
        print(f"{device:<7}{batch_size:>6}{torch_cps:16.1f}{tf_text}{ratio}")


if __name__ == "__main__":
    main()
