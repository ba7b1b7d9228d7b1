"""Statistics of a loaded PyTorch model: parameters, FLOPs, file size, a per-layer table and CPU latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from dspl.latency import time_calls
from dspl.models.loaded import LoadedModel
from dspl.threads import timing_threads, torch_threads


def example_input(loaded: LoadedModel) -> torch.Tensor:
    """The model input for one silent chunk (whole-file configs: one second), as the features make it."""
    spec = loaded.config.spec
    with torch.no_grad():
        return loaded.features(torch.zeros(1, spec.chunk_samples or spec.sample_rate))


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
    """Latency of one forward pass on the CPU, summarised as dspl.latency does (median/p90/mean/min in ms), on the
    threads a measurement gets now (dspl.threads.timing_threads), with their count."""
    count = timing_threads(torch.get_num_threads())
    with torch.no_grad(), torch_threads(count):
        return {**time_calls({"the PyTorch model": lambda: model(x)}, runs)["the PyTorch model"], "threads": count}


def model_stats(loaded: LoadedModel, runs: int = 20) -> dict[str, Any]:
    """Statistics of a loaded model as a JSON-ready dict."""
    model = loaded.model.eval()
    x = example_input(loaded)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = counter.get_total_flops()
    return {
        "model": loaded.source,
        "backbone": loaded.config.model.basemodel_name,
        "input_shape": list(x.shape),
        "classes": list(loaded.classes.labels),
        "params_total": sum(p.numel() for p in model.parameters()),
        "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "buffers": sum(b.numel() for b in model.buffers()),
        "flops": flops,
        "macs": flops // 2,
        "file_size_bytes": Path(loaded.source).stat().st_size,
        "latency": forward_latency(model, x, runs=runs),
        "layers": layer_table(model, x),
    }
