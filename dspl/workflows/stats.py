"""`stats`: the statistics of a model file (dspl.loading.model_stats) printed as a table and a summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from dspl.latency import describe


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
