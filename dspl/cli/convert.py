"""`convert`: DeepSpectrumLite's model.h5 -> .tflite conversion (float32 image model, verified)."""

from __future__ import annotations

import click

from dspl.cli.options import keras_configs_option


@click.command(name="convert", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(dir_okay=False),
              help="The model file (dspl's model.h5, or DeepSpectrumLite's with -hc and -cc).")
@click.option("-d", "--destination", required=True, type=click.Path(dir_okay=False),
              help="The .tflite file to write: plot [1, H, W, 3] on 0..255 -> scores.")
@keras_configs_option
def command(source: str, destination: str, hp_config: str | None, class_config: str | None) -> None:
    """Convert a model.h5 to a TFLite model (DeepSpectrumLite compatible)."""
    from dspl.export.exporter import convert

    click.echo(f"wrote {convert(source, destination, hp_config=hp_config, class_config=class_config)}")
