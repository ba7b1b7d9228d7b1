"""`create-preprocessor`: write a TFLite model that turns one raw audio chunk into its plot image."""

from __future__ import annotations

import click

from dspl.cli.options import input_file, output_file, whole_file_seconds_option


@click.command(name="create-preprocessor")
@click.option("-hc", "--hyper-config", "hyper_config", required=True, type=click.Path(dir_okay=False),
              callback=input_file("hyper-parameter config"), help="Hyper-parameter config (JSON of lists).")
@click.option("-d", "--destination", required=True, type=click.Path(dir_okay=False), callback=output_file,
              help="The .tflite file to write.")
@click.option("--config-index", default=0, show_default=True, type=click.IntRange(min=0),
              help="Which configuration of the grid to use.")
@whole_file_seconds_option("other methods need it")
def command(hyper_config: str, destination: str, config_index: int, whole_file_seconds: float | None) -> None:
    """Write a TFLite model: raw audio chunk [1, N] -> plot [1, H, W, 3], for one configuration of the grid."""
    from dspl.config import load_config
    from dspl.export.preprocessor import create_preprocessor

    spec = load_config(hyper_config, config_index).spec
    path = create_preprocessor(spec, destination, spec.input_samples(whole_file_seconds))
    click.echo(f"wrote {path}")
