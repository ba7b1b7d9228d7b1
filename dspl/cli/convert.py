"""`convert`: DeepSpectrumLite's model.h5 -> .tflite conversion (float32 image model, verified)."""

from __future__ import annotations

import click

from dspl.cli.options import keras_configs_option, model_path, output_file
from dspl.config import GivenConfigs


@click.command(name="convert", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(), callback=model_path,
              help="The model file (dspl's model.h5, or DeepSpectrumLite's), or the folder holding it.")
@click.option("-d", "--destination", required=True, type=click.Path(dir_okay=False), callback=output_file,
              help="The .tflite file to write: plot [1, H, W, 3] on 0..255 -> scores.")
@keras_configs_option
def command(source: str, destination: str, given: GivenConfigs) -> None:
    """Convert a model.h5 to a TFLite model (DeepSpectrumLite compatible)."""
    from dspl.workflows.export import convert_model
    from dspl.workflows.progress import step_status

    with step_status("convert") as on_step:
        written = convert_model(source, destination, given=given, on_step=on_step)
    click.echo(f"wrote {written}")
