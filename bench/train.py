"""Training throughput: samples/s and the share of step time spent waiting for data, per backbone and device.

The real pipeline (cached waveform chunks from AudioDataModule, plots and SapAugment/CutMix/SpecAugment on
the training device, random backbone weights: no download) on generated example data. Per measured step
(after warm-up steps): the gap between one batch's end and the next batch's start (data loader + transfer +
plots) and the plot time alone (a hook around PlotTransform), against the whole step.

    python bench/train.py [--backbones mobilenet_v2 densenet121] [--steps 8] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from dspl.config import ClassConfig, expand_grid, parse_grid
from dspl.data.datamodule import AudioDataModule
from dspl.data.example import CLASSES, example_hp, write_example_data
from dspl.models.module import DsplModule


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StepTimer(Callback):
    """Times each training step, the gap before it (waiting for the batch) and the plot computation."""

    def __init__(self, device: str, warmup: int) -> None:
        self.device, self.warmup = device, warmup
        self.gaps: list[float] = []
        self.steps: list[float] = []
        self.plots: list[float] = []
        self._last_end: float | None = None
        self._start = 0.0
        self._plot_start = 0.0
        self._plot_time = 0.0

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        module.features.register_forward_pre_hook(self._plot_begin)
        module.features.register_forward_hook(self._plot_end)

    def _plot_begin(self, *_: object) -> None:
        _sync(self.device)
        self._plot_start = time.perf_counter()

    def _plot_end(self, *_: object) -> None:
        _sync(self.device)
        self._plot_time = time.perf_counter() - self._plot_start

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        _sync(self.device)
        self._start = time.perf_counter()
        if batch_idx >= self.warmup and self._last_end is not None:
            self.gaps.append(self._start - self._last_end)
            self.plots.append(self._plot_time)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        _sync(self.device)
        end = time.perf_counter()
        if batch_idx >= self.warmup and self.gaps:
            self.steps.append(end - self._start)
        self._last_end = end


def measure(data_dir: Path, backbone: str, device: str, image_size: int, batch_size: int, steps: int,
            warmup: int) -> dict[str, float]:
    """Train ``warmup + steps`` batches and return samples/s and the shares of time per step."""
    raw = {**example_hp(), "basemodel_name": backbone, "weights": "", "image_width": image_size,
           "image_height": image_size, "batch_size": batch_size, "num_units": 512}
    hp = expand_grid(parse_grid({k: [v] for k, v in raw.items()}))[0]
    classes = ClassConfig.from_dict(CLASSES)
    L.seed_everything(hp["seed"], verbose=False)
    module = DsplModule(hp, classes.to_dict())
    data = AudioDataModule(data_dir / "audio", data_dir / "label.csv", hp, classes)
    timer = StepTimer(device, warmup)
    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_epochs=1,
                        limit_train_batches=warmup + steps, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[timer])
    trainer.fit(module, datamodule=data)
    total = sum(timer.gaps) + sum(timer.steps)
    return {"samples_per_s": len(timer.steps) * batch_size / total, "step_ms": 1000 * total / len(timer.steps),
            "wait_share": (sum(timer.gaps) - sum(timer.plots)) / total, "plot_share": sum(timer.plots) / total,
            "gap_share": sum(timer.gaps) / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["mobilenet_v2", "densenet121"])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="measured steps (after --warmup steps)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None, help="example data dir (generated if absent)")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="dspl_bench_train_"))
    if not (data_dir / "label.csv").exists():
        # about 3 chunks per file: enough training chunks for warm-up + measured steps
        per_class = -(-(args.warmup + args.steps + 1) * args.batch_size // (3 * len(CLASSES)))
        write_example_data(data_dir, files_per_class=per_class)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"{'device':6} {'backbone':14} {'input':>9} {'batch':>5} {'samples/s':>10} {'step ms':>9} "
          f"{'data wait':>9} {'plots':>6}")
    for device in args.devices:
        for backbone in args.backbones:
            r = measure(data_dir, backbone, device, args.image_size, args.batch_size, args.steps, args.warmup)
            print(f"{device:6} {backbone:14} {args.image_size:>4}x{args.image_size:<4} {args.batch_size:>5} "
                  f"{r['samples_per_s']:>10.1f} {r['step_ms']:>9.1f} {100 * r['wait_share']:>8.1f}% "
                  f"{100 * r['plot_share']:>5.1f}%", flush=True)


if __name__ == "__main__":
    main()
