"""`devel-test -md MODEL -d DATA_DIR -l LABELS [-hc HP] [-cc CLASSES]`."""

from __future__ import annotations

import click

from dspl.cli.options import (
    batch_size_option,
    checked_configs_option,
    existing,
    input_file,
    model_file_option,
)
from dspl.config import GivenConfigs


@click.command("devel-test")
@model_file_option
@click.option("-d", "--data-dir", "data_dir", required=True, type=click.Path(),
              callback=existing("data directory not found"), help="Directory of the audio files.")
@click.option("-l", "--label-file", "label_file", required=True, type=click.Path(),
              callback=input_file("label file"), help="Label file (CSV).")
@checked_configs_option
@batch_size_option
def command(model: str, data_dir: str, label_file: str, given: GivenConfigs,
            batch_size: int) -> None:
    """Evaluate a model on the devel and test partitions of a label file.

    Writes <model dir>/evaluation/{devel,test}/{devel,test}.{chunks,grouped}.{metrics.json,predictions.csv}
    and confusion-matrix PNGs; prints the classification report; rewrites the model's report page.
    """
    from dspl.workflows.evaluate import devel_test
    from dspl.workflows.report import write_report

    devel_test(model, data_dir, label_file, given, batch_size=batch_size)
    click.echo(f"report: {write_report(model, data_dir, label_file, given)}")
