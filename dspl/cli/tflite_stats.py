"""`tflite-stats`: tensors, parameters, size, operators and latency of a .tflite model (+ weights HDF5)."""

from __future__ import annotations

import json

import click

from dspl.cli.options import input_file, verbosity


@click.command(name="tflite-stats", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-md", "--model", "model", required=True, type=click.Path(dir_okay=False),
              callback=input_file("TFLite model file"), help="The .tflite file.")
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1), help="Timed invokes.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def command(model: str, runs: int, as_json: bool) -> None:
    """Print tensor details, parameter count, file size, operator histogram and latency.

    Prints a summary; -v adds the table of every tensor, --json prints everything as JSON.
    """
    from dspl.export.tflite_stats import tflite_stats

    stats = tflite_stats(model, runs=runs)
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    _print(stats, tensors=verbosity() >= 1)


def _print(stats: dict, tensors: bool) -> None:
    from dspl.workflows.console import make_console
    from rich.table import Table

    from dspl.latency import describe

    console = make_console()
    for kind in ("inputs", "outputs"):
        for item in stats[kind]:
            console.print(f"{kind[:-1]}: {item['name']} {item['shape']} {item['dtype']}"
                          + (f" (scale {item['scale']:.6g}, zero point {item['zero_point']})" if item["scale"] else ""))
    if tensors:
        table = Table("index", "name", "shape", "dtype", title=f"{len(stats['tensors'])} tensors")
        for tensor in stats["tensors"]:
            table.add_row(str(tensor["index"]), tensor["name"], str(tensor["shape"]), tensor["dtype"])
        console.print(table)
    else:
        console.print(f"tensors: {len(stats['tensors'])} (-v lists them)")
    histogram = ", ".join(f"{name} {count}" for name, count in stats["operator_histogram"].items())
    console.print(f"operators: {stats['operators']} ({histogram})")
    console.print(f"file size: {stats['file_size_bytes']:,} bytes")
    console.print(f"parameters: {stats['parameters']:,} in {stats['constant_tensors']} constant tensors")
    console.print(f"latency: {describe(stats['latency'])}")
    if stats.get("weights_file"):
        console.print(f"weights: {stats['weights_file']}")
