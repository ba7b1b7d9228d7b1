"""`convert`: DeepSpectrumLite's model.h5 -> .tflite conversion (float32 image model, verified)."""

from __future__ import annotations

import click


@click.command(name="convert", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(dir_okay=False),
              help="The dspl model file (model.h5).")
@click.option("-d", "--destination", required=True, type=click.Path(dir_okay=False),
              help="The .tflite file to write: plot [1, H, W, 3] on 0..255 -> scores.")
def command(source: str, destination: str) -> None:
    """Convert a model.h5 to a TFLite model (DeepSpectrumLite compatible)."""
    from dspl.export.exporter import convert

    click.echo(f"wrote {convert(source, destination)}")
