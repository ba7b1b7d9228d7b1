"""`benchmark -s MODEL -e EXPORT_DIR [-d DATA -l LABELS]`: every exported variant side by side."""

from __future__ import annotations

import json

import click

from dspl.cli.options import input_file, keras_configs_option, model_path
from dspl.config import GivenConfigs


@click.command("benchmark", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(), callback=model_path,
              help="The model file the variants were exported from (model.h5 or .ckpt), or the folder holding it.")
@click.option("-e", "--export-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="The directory `dspl export` wrote the .tflite variants into.")
@click.option("-d", "--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Audio directory of the label file (with -l: accuracy per variant).")
@click.option("-l", "--label-file", type=click.Path(exists=True, dir_okay=False), default=None,
              callback=input_file("label file"),
              help="Label file whose partition is scored (with -d).")
@click.option("--partition", type=click.Choice(["train", "devel", "test"]), default="test", show_default=True)
@click.option("--runs", default=50, show_default=True, type=click.IntRange(min=1), help="Timed invokes per variant.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@keras_configs_option
def command(source: str, export_dir: str, data_dir: str | None, label_file: str | None, partition: str, runs: int,
            as_json: bool, given: GivenConfigs) -> None:
    """Size, latency and accuracy of every exported TFLite variant of one model, side by side."""
    from dspl.errors import DsplError
    from dspl.workflows.benchmark import benchmark, print_benchmark

    if (data_dir is None) != (label_file is None):
        raise DsplError("-d and -l go together: the label file's partition is scored from the data directory")
    result = benchmark(source, export_dir, data_dir, label_file, partition, runs, given=given)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        print_benchmark(result)
