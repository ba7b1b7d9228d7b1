"""`stats`: parameters, FLOPs, file size, a per-layer table and CPU latency of a model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from dspl.data.chunking import chunk_samples
from dspl.features import PlotTransform
from dspl.latency import describe, time_calls
from dspl.models.modelfile import load_model_file
from dspl.workflows.model_checks import check_hp_config


def example_input(hp: dict[str, Any]) -> torch.Tensor:
    """The model input for one silent chunk (whole-file configs: one second), as the features make it."""
    samples = chunk_samples(hp)[0] or hp["sample_rate"]
    return PlotTransform.from_hp(hp)(torch.zeros(1, samples))


def layer_table(model: torch.nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Every leaf module (and module with parameters of its own) in execution order with its type, output
    shape and own parameter count, so the rows add up to the model's parameters."""
    rows: list[dict[str, Any]] = []
    names = {module: name for name, module in model.named_modules()}

    def record(module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else None
        rows.append({"name": names[module], "type": type(module).__name__, "output_shape": shape,
                     "params": sum(p.numel() for p in module.parameters(recurse=False))})

    hooks = [m.register_forward_hook(record) for m in model.modules()
             if not list(m.children()) or list(m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def forward_latency(model: torch.nn.Module, x: torch.Tensor, runs: int = 20) -> dict[str, Any]:
    """Latency of one forward pass on the CPU, summarised as dspl.latency does (median/p90/mean/min in ms)."""
    with torch.no_grad():
        return time_calls({"model": lambda: model(x)}, runs)["model"]


def model_stats(model_path: str | Path, runs: int = 20, hp_config: str | Path | None = None) -> dict[str, Any]:
    """Statistics of a model file as a JSON-ready dict (an optional hp config is checked against it).

    A DeepSpectrumLite Keras model.h5 is measured by TensorFlow (its configs are not needed).
    """
    from dspl.legacy.keras_file import is_keras_file

    if is_keras_file(model_path):
        from dspl.legacy.keras_stats import keras_model_stats

        return keras_model_stats(model_path, runs=runs)
    loaded = load_model_file(model_path)
    if hp_config is not None:
        check_hp_config(loaded.hp, hp_config, model_path)
    model = loaded.model.eval()
    x = example_input(loaded.hp)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = counter.get_total_flops()
    return {
        "model": str(model_path),
        "backbone": loaded.hp["basemodel_name"],
        "input_shape": list(x.shape),
        "classes": list(loaded.classes.labels),
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": flops,
        "macs": flops // 2,
        "file_size_bytes": Path(model_path).stat().st_size,
        "latency": forward_latency(model, x, runs=runs),
        "layers": layer_table(model, x),
    }


def print_stats(stats: dict[str, Any], console: Console | None = None) -> None:
    """Print the per-layer table and a summary with rich."""
    console = console or Console()
    table = Table(title=f"{stats['backbone']} — {stats['model']}")
    for column in ("layer", "type", "output shape", "params"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for row in stats["layers"]:
        table.add_row(row["name"], row["type"], str(row["output_shape"]), f"{row['params']:,}")
    console.print(table)
    console.print(
        f"input {stats['input_shape']}  classes {stats['classes']}\n"
        f"parameters {stats['params_total']:,} (trainable {stats['params_trainable']:,}, buffers {stats['buffers']:,})\n"
        f"FLOPs {stats['flops']:,} (MACs {stats['macs']:,})  file size {stats['file_size_bytes'] / 1e6:.2f} MB\n"
        f"CPU latency per forward pass: {describe(stats['latency'])}"
    )
