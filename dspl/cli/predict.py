"""`predict -md MODEL -d AUDIO_DIR [-hc HP] [-cc CLASSES]`."""

from __future__ import annotations

import click

from dspl.cli.options import audio_input_option, batch_size_option, checked_configs_option
from dspl.config import GivenConfigs


@click.command("predict")
@click.option("-md", "--model-dir", "model", required=True,
              help="Model file (model.h5 or .ckpt); a glob such as 'out/models/*/*/model.h5' predicts with each.")
@audio_input_option
@checked_configs_option
@batch_size_option
def command(model: str, data: str, given: GivenConfigs, batch_size: int) -> None:
    """Predict every audio file under a directory with one or more models.

    Writes <model dir>/test/test/test.chunks.predictions.csv (filename,time,prob_<class>...,prediction)
    and test.grouped.predictions.csv (per file: mean scores and decision).
    """
    from dspl.workflows.predict import predict

    for path in predict(model, data, given, batch_size=batch_size):
        click.echo(str(path))
