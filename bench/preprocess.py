"""Preprocessing throughput: chunks per second of dspl's torch plots vs DeepSpectrumLite's, side by side.

Usage: python bench/preprocess.py [--dsl-python PATH] [--hc configs/hp_config.json] [--seconds 3]
                                  [--rounds 3] [--batch-sizes 1 64] [--threads N]

The configuration is the given grid's first one with 2 s chunks (with configs/hp_config.json: 2 s at 16 kHz ->
224x224 plots). With --dsl-python (a Python 3.8 venv with deepspectrumlite==1.0.2, see bench/dsl_side.py) the
baseline is DeepSpectrumLite's own DataPipeline.generate_spectrogram, mapped over a tf.data dataset as its
pipeline maps it; without it, the TF reference (dspl.export.tf_reference.TFPlotPipeline, tf.signal/tf.image as
DeepSpectrumLite computed its plots) stands in. The two sides alternate, --rounds times per batch size, and the
table gives the medians. Target: dspl >= 25x DeepSpectrumLite's DataPipeline chunks per second on the same CPU,
at batch 64 and at batch 1. dspl's side is timed the way Predictor (the path `predict` takes) calls the
transform: inference mode, one call a batch.

The script re-runs itself once with two environment settings that only matter to torch: glibc's mmap/trim
thresholds raised (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_: else a batch of 64 plots, 38 MB, pays page
faults on every call while TensorFlow's own allocator keeps its memory) and OMP_WAIT_POLICY=PASSIVE (else
torch's OpenMP threads spin and collapse, 10-100x slower, when other processes share the cores).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from dsl_side import DslProcess

    from dspl.config import RunConfig
    from dspl.spec import PreprocessingSpec

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


def torch_step(spec: "PreprocessingSpec", audio: np.ndarray, device: str) -> Callable[[], object]:
    """One batch through PlotTransform on ``device`` (synchronised, so GPU timings are complete)."""
    import torch

    from dspl.features import PlotTransform

    transform = PlotTransform(spec).to(device).eval()
    batch = torch.from_numpy(audio).to(device)

    def step() -> object:
        with torch.inference_mode():
            out = transform(batch)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    return step


def tf_step(spec: "PreprocessingSpec", audio: np.ndarray) -> Callable[[], object] | str:
    """One batch through the TF reference, or the reason it is unavailable."""
    try:
        import tensorflow as tf

        from dspl.export.tf_reference import TFPlotPipeline
    except ImportError as exc:
        return f"TF reference unavailable ({exc})"
    pipeline = TFPlotPipeline(spec)
    batch = tf.constant(audio)
    return lambda: pipeline(batch).numpy()


def dsl_step(dsl: "DslProcess", config: "RunConfig", audio: np.ndarray, seconds: float) -> Callable[[], float]:
    """A measurement of DeepSpectrumLite's own DataPipeline plots on ``audio`` in its process (chunks/s)."""
    from dsl_side import dsl_hp

    hp_config = dsl.write_hp(dsl_hp(config))
    batch = dsl.work / f"audio_{audio.shape[0]}.npy"
    np.save(batch, audio)
    return lambda: dsl.request("plots", hp_config=hp_config, audio=batch, seconds=seconds)["chunks_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hc", type=Path, default=ROOT / "configs" / "hp_config.json", help="hyper-parameter grid")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per measurement")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch and TF (0: their defaults)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per side and batch size")
    parser.add_argument("--dsl-python", type=Path, default=None,
                        help="python of a DeepSpectrumLite 1.0.2 venv: time its own pipeline as the baseline")
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

    config = load_config(args.hc).replace(chunk_size=2.0, chunk_hop_size=1.0)
    spec = config.spec
    num_samples = spec.chunk_samples
    print(f"config: {args.hc} [0] with 2 s chunks: {spec.sample_rate} Hz, {num_samples} samples -> "
          f"{spec.image_height}x{spec.image_width} {spec.color_map}, mel={spec.mel_scale} db={spec.db_scale}, "
          f"resize {spec.resize_method} anti_alias={spec.anti_alias}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; TF threads: "
          f"{args.threads or 'default'}; {os.cpu_count()} CPUs; env: "
          + " ".join(f"{key}={value}" for key, value in RUN_ENV.items()))
    dsl = None
    if args.dsl_python:
        from dsl_side import DslProcess

        dsl = DslProcess(args.dsl_python)
    baseline = "DeepSpectrumLite 1.0.2 DataPipeline" if dsl else "TF reference (stand-in)"
    rng = np.random.default_rng(0)
    rows = []
    try:
        for batch_size in args.batch_sizes:
            audio = (0.1 * rng.standard_normal((batch_size, num_samples))).astype(np.float32)
            ours = torch_step(spec, audio, "cpu")
            if dsl:
                theirs: Callable[[], float] | str = dsl_step(dsl, config, audio, args.seconds)
            else:
                step = tf_step(spec, audio)
                theirs = (lambda: measure(step, batch_size, args.seconds)) if callable(step) else step
            if not callable(theirs):
                print(theirs)
            torch_runs, base_runs = [], []
            for _ in range(args.rounds):  # alternate, so that load on a shared machine affects both alike
                torch_runs.append(measure(ours, batch_size, args.seconds))
                if callable(theirs):
                    base_runs.append(theirs())
            rows.append(("cpu", batch_size, statistics.median(torch_runs),
                         statistics.median(base_runs) if base_runs else None))
            if torch.cuda.is_available():
                cuda = measure(torch_step(spec, audio, "cuda"), batch_size, args.seconds)
                rows.append(("cuda", batch_size, cuda, None))
    finally:
        if dsl:
            dsl.close()

    print(f"\nmedians of {args.rounds} alternating rounds of >= {args.seconds:g} s; baseline: {baseline}")
    print(f"{'device':<7}{'batch':>6}{'dspl chunks/s':>15}{'baseline chunks/s':>19}{'ratio':>9}")
    for device, batch_size, torch_cps, base_cps in rows:
        base_text = f"{base_cps:19.1f}" if base_cps else f"{'-':>19}"
        ratio = f"{torch_cps / base_cps:8.1f}x" if base_cps else f"{'-':>9}"
        print(f"{device:<7}{batch_size:>6}{torch_cps:15.1f}{base_text}{ratio}")

if __name__ == "__main__":
    main()
