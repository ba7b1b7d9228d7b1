"""`tflite-stats`: tensors, parameters, size, operators and latency of a .tflite model (+ weights HDF5)."""

from __future__ import annotations

import json

import click


@click.command(name="tflite-stats", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-md", "--model", "model", required=True, type=click.Path(dir_okay=False), help="The .tflite file.")
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1), help="Timed invokes.")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="Interpreter threads (default: LiteRT's).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def command(model: str, runs: int, threads: int | None, as_json: bool) -> None:
    """Print tensor details, parameter count, file size, operator histogram and latency."""
    from dspl.export.tflite_stats import tflite_stats

    stats = tflite_stats(model, runs=runs, threads=threads)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    _print(stats)


def _print(stats: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from dspl.latency import describe

    console = Console()
    for kind in ("inputs", "outputs"):
        for item in stats[kind]:
            console.print(f"{kind[:-1]}: {item['name']} {item['shape']} {item['dtype']}"
                          + (f" (scale {item['scale']:.6g}, zero point {item['zero_point']})" if item["scale"] else ""))
    tensors = Table("index", "name", "shape", "dtype", title=f"{len(stats['tensors'])} tensors")
    for tensor in stats["tensors"]:
        tensors.add_row(str(tensor["index"]), tensor["name"], str(tensor["shape"]), tensor["dtype"])
    console.print(tensors)
    operators = Table("operator", "count", title=f"{stats['operators']} operators")
    for name, count in stats["operator_histogram"].items():
        operators.add_row(name, str(count))
    console.print(operators)
    console.print(f"file size: {stats['file_size_bytes']:,} bytes")
    console.print(f"parameters: {stats['parameters']:,} in {stats['constant_tensors']} constant tensors")
    console.print(f"latency: {describe(stats['latency'])}")
    if stats.get("weights_file"):
        console.print(f"weights: {stats['weights_file']}")
