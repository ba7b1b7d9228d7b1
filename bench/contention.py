"""dspl on a machine that is not idle: the same measurements idle and with a busy process pinned to one core.

Usage: python bench/contention.py [--dsl-python PATH] [--seconds 3] [--files-per-class 125] [--long-minutes 10]
                                  [--rounds 1] [--only plots_1 plots_64 train predict_short predict_long]

Each measurement runs in a fresh process (so dspl's thread policy, dspl.threads, starts as a user's would), once
on an idle machine and once while another process spins on CPU 0 (what a second SLURM array task, a browser or
a colleague's job does to a 2-core machine). "torch defaults" repeats the busy run with the settings dspl had
before its thread policy (OpenMP's active waiting, all CPUs), and "torch defaults, idle" the idle run with them
(the policy must keep idle figures within 10 % of what they were). With --dsl-python (a Python 3.8 venv with
deepspectrumlite==1.0.2, see bench/dsl_side.py) DeepSpectrumLite's own DataPipeline plots are measured the same
way. Targets: busy >= 0.45x idle for every dspl figure (one of two cores is taken), and dspl >= 10x
DeepSpectrumLite's plots per second at batch 1 on the busy machine.

Measurements: plots per second of PlotTransform at batch 1 and 64 (2 s chunks of the shipped config, 224x224
plots); one training epoch of the example set's configuration (its tiny backbone, 64x64 plots) over
3 x --files-per-class training files; `predict` over the example set's files (short files) and over one long
file of --long-minutes minutes. Each figure is the median of --rounds rounds; a round runs the four conditions one
after another (every other round in reverse order), so neither a machine whose speed drifts over minutes nor the
process that ran just before favours one condition.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from busy import Busy, busy_if  # bench/: the spinning process
from preprocess import measure  # bench/: the chunks/s timing loop of the plots bench

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ("plots_1", "plots_64", "train", "predict_short", "predict_long")
BEFORE_POLICY = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": str(len(os.sched_getaffinity(0)))}
CONDITIONS = (("idle", {}, False), ("busy", {}, True), ("idle, torch defaults", BEFORE_POLICY, False),
              ("busy, torch defaults", BEFORE_POLICY, True))


def measure_plots(batch_size: int, seconds: float) -> dict[str, float]:
    import torch

    from dspl.config import load_config
    from dspl.features import PlotTransform

    spec = load_config(ROOT / "configs" / "hp_config.json").replace(chunk_size=2.0, chunk_hop_size=1.0).spec
    audio = torch.from_numpy((0.1 * np.random.default_rng(0).standard_normal((batch_size, spec.chunk_samples)))
                             .astype(np.float32))
    transform = PlotTransform(spec).eval()

    def step() -> object:
        with torch.inference_mode():
            return transform(audio)

    return {"value": measure(step, batch_size, seconds), "unit": "chunks/s"}


def measure_train(data: Path) -> dict[str, float]:
    from dspl.config import load_class_config, load_config
    from dspl.workflows.train import TrainingData, TrainOptions, train_configuration

    config = load_config(data / "hp_config.json").replace(epochs=1, pre_epochs=0)
    options = TrainOptions(trainer_options={"enable_progress_bar": False, "callbacks": []})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train_configuration(0, config, load_class_config(data / "class_config.json"),
                            TrainingData(data / "audio", data / "label.csv"), out, options)
        seconds = time.perf_counter() - start
    files = sum(1 for line in (data / "label.csv").read_text().splitlines() if line.startswith("train_"))
    return {"value": files / seconds, "unit": "train files/s (one epoch, with devel and test)", "seconds": seconds}


def measure_predict(model: Path, audio: Path, files: int) -> dict[str, float]:
    from dspl.workflows.predict import predict

    start = time.perf_counter()
    predict(model, audio)
    seconds = time.perf_counter() - start
    return {"value": files / seconds, "unit": "files/s", "seconds": seconds}


def child(args: argparse.Namespace) -> None:
    """One measurement in this process; prints its result as JSON."""
    data, name = Path(args.data), args.measure
    if name.startswith("plots_"):
        result = measure_plots(int(name.split("_")[1]), args.seconds)
    elif name == "train":
        result = measure_train(data)
    elif name == "predict_short":
        result = measure_predict(data / "model.h5", data / "audio", len(list((data / "audio").glob("*.wav"))))
    else:
        result = measure_predict(data / "model.h5", data / "long", 1)
    print(json.dumps(result))


def prepare(work: Path, files_per_class: int, long_minutes: float) -> Path:
    """The example set, a model trained one epoch on it, and one long file (--long-minutes of its audio)."""
    import soundfile as sf

    from dspl.data.example import write_example_data

    data = write_example_data(work / "data", files_per_class=files_per_class, seed=0)
    subprocess.run([sys.executable, "-m", "dspl", "train", "-d", str(data / "audio"), "-md", str(work / "out"),
                    "-hc", str(data / "hp_config.json"), "-cc", str(data / "class_config.json"),
                    "-l", str(data / "label.csv")], check=True, capture_output=True)
    (data / "model.h5").symlink_to(next((work / "out" / "models").rglob("model.h5")))
    pieces = [sf.read(path, dtype="float32")[0] for path in sorted((data / "audio").glob("*.wav"))]
    long = np.concatenate(pieces)
    repeats = int(np.ceil(long_minutes * 60 * 16000 / len(long)))
    (data / "long").mkdir()
    sf.write(data / "long" / "long.wav", np.tile(long, repeats)[: int(long_minutes * 60 * 16000)], 16000)
    return data


def run_child(name: str, data: Path, seconds: float, environ: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure", name, "--data", str(data), "--seconds", str(seconds)]
    done = subprocess.run(command, capture_output=True, text=True, env=environ)
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dsl_plots(dsl_python: Path, batch_size: int, seconds: float) -> float:
    """DeepSpectrumLite's own DataPipeline chunks/s on the shipped config's 2 s chunks (bench/dsl_side.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dsl_side import DslProcess, dsl_hp

    from dspl.config import load_config

    config = load_config(ROOT / "configs" / "hp_config.json").replace(chunk_size=2.0, chunk_hop_size=1.0)
    audio = (0.1 * np.random.default_rng(0).standard_normal((batch_size, config.spec.chunk_samples))).astype(
        np.float32)
    with DslProcess(dsl_python) as dsl:
        batch = dsl.work / "audio.npy"
        np.save(batch, audio)
        return dsl.request("plots", hp_config=dsl.write_hp(dsl_hp(config)), audio=batch, seconds=seconds)[
            "chunks_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsl-python", type=Path, default=None, help="python of a DeepSpectrumLite 1.0.2 venv")
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds of a plots measurement")
    parser.add_argument("--files-per-class", type=int, default=125, help="example set size (train files per class)")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the long file of predict_long")
    parser.add_argument("--rounds", type=int, default=1, help="repetitions of each measurement (median)")
    parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS))
    parser.add_argument("--measure", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        child(args)
        return
    clean = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    print(f"{len(os.sched_getaffinity(0))} CPUs; busy: one process spinning on CPU 0; {args.rounds} round(s)")
    with tempfile.TemporaryDirectory() as work:
        data = prepare(Path(work), args.files_per_class, args.long_minutes)
        rows = []
        for name in args.only:
            values: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in CONDITIONS}
            for round_ in range(args.rounds):  # interleaved conditions, every other round in reverse order
                for label, setting, busy in CONDITIONS if round_ % 2 == 0 else CONDITIONS[::-1]:
                    with busy_if(busy):
                        values[label].append(run_child(name, data, args.seconds, {**clean, **setting}))
            figures = {label: statistics.median(v["value"] for v in runs) for label, runs in values.items()}
            unit = values["idle"][0]["unit"]
            if args.dsl_python and name.startswith("plots_"):
                batch_size = int(name.split("_")[1])
                figures["DeepSpectrumLite idle"] = dsl_plots(args.dsl_python, batch_size, args.seconds)
                with Busy():
                    figures["DeepSpectrumLite busy"] = dsl_plots(args.dsl_python, batch_size, args.seconds)
            rows.append((name, unit, figures))
            print(name, unit, {k: round(v, 2) for k, v in figures.items()}, flush=True)
    print()
    print("| measurement | unit | dspl idle | dspl busy | busy / idle | torch defaults, idle | idle / defaults | "
          "torch defaults, busy | DeepSpectrumLite idle | DeepSpectrumLite busy | dspl / DeepSpectrumLite, busy |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, unit, f in rows:
        dsl_idle, dsl_busy = f.get("DeepSpectrumLite idle"), f.get("DeepSpectrumLite busy")
        ratio = f"{f['busy'] / dsl_busy:.1f}x" if dsl_busy else "-"
        print(f"| {name} | {unit} | {f['idle']:.1f} | {f['busy']:.1f} | {f['busy'] / f['idle']:.2f} | "
              f"{f['idle, torch defaults']:.1f} | {f['idle'] / f['idle, torch defaults']:.2f} | "
              f"{f['busy, torch defaults']:.1f} | {f'{dsl_idle:.1f}' if dsl_idle else '-'} | "
              f"{f'{dsl_busy:.1f}' if dsl_busy else '-'} | {ratio} |")


if __name__ == "__main__":
    main()
