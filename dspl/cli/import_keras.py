"""`import-keras -s MODEL.h5 -hc HP -cc CLASSES -o OUT.h5`: a DeepSpectrumLite model as a dspl model file."""

from __future__ import annotations

import click

from dspl.cli.options import input_file, model_path, output_file


@click.command(name="import-keras", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(), callback=model_path,
              help="DeepSpectrumLite's Keras model.h5, or the folder holding it.")
@click.option("-hc", "--hyper-config", "hp_config", required=True, type=click.Path(exists=True, dir_okay=False),
              callback=input_file("hyper-parameter config"),
              help="The hyper-parameter config it was trained with.")
@click.option("-cc", "--class-config", "class_config", required=True, type=click.Path(exists=True, dir_okay=False),
              callback=input_file("class config"),
              help="The class config it was trained with.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), callback=output_file,
              help="The dspl model file to write (for predict, export, or `weights:` of a new training).")
def command(source: str, hp_config: str, class_config: str, output: str) -> None:
    """Port a DeepSpectrumLite Keras model into a dspl (PyTorch) model file, checked against Keras."""
    from dspl.config import GivenConfigs
    from dspl.legacy.port import import_keras

    path, difference = import_keras(source, GivenConfigs.read(hp_config, class_config), output)
    click.echo(f"wrote {path} (max |Δ score| against the Keras model: {difference:.2g})")
