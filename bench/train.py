"""Training throughput: samples/s of whole epochs, per backbone and device, dspl vs DeepSpectrumLite side by side.

The real pipeline on FSDD (../shared/data/fsdd/recordings; the first --files recordings of george, jackson and
lucas as the train partition): whole files at 8 kHz, 224x224 nearest plots of 64 mel bands, backbones from
scratch (no download), batch 32, SapAugment + CutMix + SpecAugment. dspl trains with Lightning (cached
waveforms, plots and augmentation on the training device); per epoch after the first (warm-up) it reports
samples/s, the share of the epoch spent waiting for batches and the share spent making plots.

With --dsl-python (a Python 3.8 venv with deepspectrumlite==1.0.2, see bench/dsl_side.py) DeepSpectrumLite's
own training runs in its process on the same files and configuration: its DataPipeline (plots cached in memory
after the first epoch, as its `train` does) and its TransferBaseModel's Keras fit (AugmentableModel's
SapAugment/CutMix/SpecAugment train_step). After a warm-up epoch each, the two alternate epoch by epoch
(--rounds epochs each) and the table gives the medians and the ratios of samples/s and of process CPU time per
sample (the fairer figure where other processes share the cores). Target: dspl >= 3x DeepSpectrumLite's
samples per second on the CPU, on the same data and configuration.
dspl trains with channels_last and bf16 autocast where they are faster (models/speed.py: GPUs from Ampere, CPUs
with AMX for models without grouped convolutions); --precisions device float32 adds rows trained in float32 (each
against its own interleaved DeepSpectrumLite epochs), the side-by-side figure for what bf16 gains.
--busy runs everything beside a process spinning on CPU 0 (bench/busy.py): the same comparison on a machine
whose cores are shared.

    python bench/train.py [--dsl-python PATH] [--backbones mobilenet_v2 densenet121] [--rounds 2]
                          [--files 260] [--devices cpu cuda] [--precisions device float32]
                          [--data ../shared/data/fsdd/recordings] [--busy]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import soundfile as sf
import torch
from busy import busy_if  # bench/: the spinning process
from lightning.pytorch.callbacks import Callback

from dspl.config import ClassConfig, RunConfig, load_config
from dspl.data.datamodule import AudioDataModule
from dspl.models.module import DsplModule
from dspl.quiet import set_verbosity
from dspl.workflows.callbacks import quiet_lightning

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
CLASSES = {f"d{digit}": f"digit {digit}" for digit in range(10)}
# configs/hp_config.json (DeepSpectrumLite's README configuration) with these changes for FSDD
FSDD_CHANGES = {
    "weights": "", "sample_rate": 8000, "chunk_size": -1.0, "chunk_hop_size": -1.0, "upper_edge_hertz": 4000.0,
    "stft_window_size": 0.032, "stft_hop_size": 0.016, "stft_fft_length": 0.032, "num_mel_bins": 64,
    "output_activation": "softmax", "batch_size": 32, "pre_epochs": 0, "epochs": 100, "image_width": 224,
    "image_height": 224, "resize_method": "nearest", "anti_alias": False,
}


def write_data(recordings: Path, work: Path, files: int) -> tuple[Path, Path]:
    """Link ``files`` FSDD recordings as train_ files and 20 more as devel_ files (every digit and speaker alike,
    take by take); label.csv with durations
    (both parsers read filename, label, duration in samples)."""
    audio = work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    def order(path: Path) -> tuple[int, str, str]:  # take by take, so that any number of files covers all digits
        digit, speaker, take = path.stem.split("_")
        return int(take), speaker, digit

    paths = sorted((p for p in recordings.glob("*.wav") if p.name.split("_")[1] in ("george", "jackson", "lucas")),
                   key=order)
    rows = []
    for index, path in enumerate(paths[:files + 20]):
        name = f"{'train' if index < files else 'devel'}_{path.name}"
        if not (audio / name).exists():
            (audio / name).symlink_to(path.resolve())
        rows.append((name, f"d{path.name.split('_')[0]}", sf.info(str(path)).frames))
    label_file = work / "label.csv"
    with label_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("filename", "label", "duration_frames"))
        writer.writerows(rows)
    return audio, label_file


class EpochTimer(Callback):
    """Per epoch after the first: seconds, samples, time waiting for batches, time making plots. ``between``
    runs after each timed epoch (DeepSpectrumLite's epoch, interleaved), outside the timings."""

    def __init__(self, device: str, between: Any = None) -> None:
        self.device, self.between = device, between
        self.epochs: list[dict[str, float]] = []
        self._plot_start = 0.0

    def _now(self) -> float:
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        module.features.register_forward_pre_hook(lambda *_: setattr(self, "_plot_start", self._now()))
        module.features.register_forward_hook(lambda *_: self._add("plots", self._now() - self._plot_start))

    def _add(self, key: str, seconds: float) -> None:
        self._epoch[key] = self._epoch.get(key, 0.0) + seconds

    def on_train_epoch_start(self, trainer, module) -> None:
        self._epoch: dict[str, float] = {"samples": 0}
        self._cpu_start = time.process_time()
        self._start = self._last = self._now()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._add("wait", self._now() - self._last)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._epoch["samples"] += len(batch["target"])
        self._last = self._now()

    def on_train_epoch_end(self, trainer, module) -> None:
        self._epoch["seconds"] = self._now() - self._start
        self._epoch["cpu_seconds"] = time.process_time() - self._cpu_start
        if trainer.current_epoch > 0:  # the first epoch warms up
            self.epochs.append(self._epoch)
            if self.between is not None:
                self.between()


def train_dspl(audio: Path, label_file: Path, config: RunConfig, device: str, epochs: int,
               between: Any = None, mixed_precision: bool = True) -> tuple[list[dict[str, float]], str]:
    """Train ``epochs`` epochs (the first a warm-up); the timings of the others and the precision trained in."""
    classes = ClassConfig.from_dict(CLASSES)
    L.seed_everything(config.training.seed, verbose=False)
    module = DsplModule(config, classes, pretrained=False, mixed_precision=mixed_precision)
    data = AudioDataModule(audio, label_file, config, classes)
    timer = EpochTimer(device, between)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=epochs,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[timer])
    with quiet_lightning():
        trainer.fit(module, datamodule=data)
    return timer.epochs, "bf16" if module.speed.autocast_dtype == torch.bfloat16 else "fp32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsl-python", type=Path, default=None,
                        help="python of a DeepSpectrumLite 1.0.2 venv: train with its own code side by side")
    parser.add_argument("--backbones", nargs="+", default=["mobilenet_v2", "densenet121"])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--rounds", type=int, default=2, help="timed epochs per side (after one warm-up epoch)")
    parser.add_argument("--files", type=int, default=260, help="training recordings")
    parser.add_argument("--precisions", nargs="+", default=["device"], choices=["device", "float32"],
                        help="device: bf16 autocast where the device gains from it; float32: never")
    parser.add_argument("--data", type=Path, default=FSDD, help="FSDD recordings")
    parser.add_argument("--busy", action="store_true",
                        help="train both sides beside a process spinning on CPU 0 (bench/busy.py)")
    args = parser.parse_args()
    set_verbosity(0)  # as `dspl train` without -v: no Lightning info lines or product tips between the rows

    with tempfile.TemporaryDirectory(prefix="dspl_bench_train_") as work, busy_if(args.busy):
        run(args, Path(work))


def run(args: argparse.Namespace, work: Path) -> None:
    """Train and print one row per backbone and device, with the data linked under ``work``."""
    audio, label_file = write_data(args.data, work, args.files)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
          + ("; beside a process spinning on CPU 0" if args.busy else "")
          + f"; {args.files} training files of {args.data}, whole files, 224x224 nearest plots, batch 32, "
            f"SapAugment + CutMix + SpecAugment; medians of {args.rounds} epochs after a warm-up epoch")
    print("cpu ms: CPU time of the process per sample (on a shared machine a fairer measure of work than wall "
          "time); ratios: samples/s (wall), then CPU time per sample")
    print(f"{'device':6} {'backbone':14} {'dtype':>5} {'dspl samples/s':>14} {'cpu ms':>9} {'data wait':>9} "
          f"{'plots':>6} {'DSL samples/s':>14} {'cpu ms':>9} {'ratios':>15}", flush=True)
    for backbone in args.backbones:
        config = load_config(ROOT / "configs" / "hp_config.json").replace(**FSDD_CHANGES, basemodel_name=backbone)
        for device, precision in ((d, p) for d in args.devices for p in args.precisions):
            dsl_runs: list[dict[str, float]] = []
            dsl = None
            if args.dsl_python and device == "cpu":
                from dsl_side import DslProcess, dsl_hp

                dsl = DslProcess(args.dsl_python)
                class_config = dsl.work / "class_config.json"
                class_config.write_text(json.dumps(CLASSES), encoding="utf-8")
                dsl.request("train_setup", hp_config=dsl.write_hp(dsl_hp(config)), class_config=class_config,
                            label_file=label_file, data_dir=audio, run_dir=dsl.work / "run")
                dsl.request("train_epoch")  # warm-up: graph tracing, plots into its cache
            try:
                between = (lambda: dsl_runs.append(dsl.request("train_epoch"))) if dsl else None
                epochs, dtype = train_dspl(audio, label_file, config, device, args.rounds + 1, between,
                                           mixed_precision=precision == "device")
            finally:
                if dsl:
                    dsl.close()
            ours = statistics.median(e["samples"] / e["seconds"] for e in epochs)
            our_cpu = statistics.median(1000 * e["cpu_seconds"] / e["samples"] for e in epochs)
            # the wait before a step includes the plots (made after the batch transfer)
            wait = statistics.median((e.get("wait", 0.0) - e.get("plots", 0.0)) / e["seconds"] for e in epochs)
            plots = statistics.median(e.get("plots", 0.0) / e["seconds"] for e in epochs)
            line = (f"{device:6} {backbone:14} {dtype:>5} {ours:>14.1f} {our_cpu:>9.1f} {100 * wait:>8.1f}% "
                    f"{100 * plots:>5.1f}%")
            if dsl_runs:
                theirs = statistics.median(r["samples_per_s"] for r in dsl_runs)
                their_cpu = statistics.median(r["cpu_ms_per_sample"] for r in dsl_runs)
                line += f" {theirs:>14.1f} {their_cpu:>9.1f} {ours / theirs:>6.2f}x {their_cpu / our_cpu:>6.2f}x"
            print(line, flush=True)

if __name__ == "__main__":
    main()
