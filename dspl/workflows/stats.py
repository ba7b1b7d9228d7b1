"""`stats`: the statistics of a model file (dspl.loading.model_stats) printed as a table and a summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from dspl.latency import describe
from dspl.workflows.console import make_console


def print_stats(stats: dict[str, Any], layers: bool = False, console: Console | None = None) -> None:
    """Print a summary with rich, after the per-layer table with ``layers``."""
    console = console or make_console()
    if layers:
        table = Table(title=f"{stats['backbone']} — {stats['model']}")
        for column in ("layer", "type", "output shape", "params"):
            table.add_column(column, justify="right" if column == "params" else "left")
        for row in stats["layers"]:
            table.add_row(row["name"], row["type"], str(row["output_shape"]), f"{row['params']:,}")
        console.print(table)
    else:
        console.print(f"{stats['backbone']}: {stats['model']} ({len(stats['layers'])} layers: -v lists them)")
    console.print(
        f"input {stats['input_shape']}  classes {stats['classes']}\n"
        f"parameters {stats['params_total']:,} (trainable {stats['params_trainable']:,}, "
        f"buffers {stats['buffers']:,})\n"
        f"FLOPs {stats['flops']:,} (MACs {stats['macs']:,})  file size {stats['file_size_bytes'] / 1e6:.2f} MB\n"
        f"CPU latency per forward pass: {describe(stats['latency'])}",
        soft_wrap=True,
    )
