"""`predict -md MODEL -d AUDIO_DIR [-hc HP] [-cc CLASSES] [-o DIR]`."""

from __future__ import annotations

import click

from dspl.cli.options import (
    audio_input_option,
    batch_size_option,
    checked_configs_option,
    model_path,
)
from dspl.config import GivenConfigs

SHOWN_FILES = 20  # files listed on the terminal; the CSVs hold all


@click.command("predict")
@click.option("-md", "--model-dir", "model", required=True, callback=model_path,
              help="Model file (model.h5 or .ckpt) or its folder; a glob such as 'out/models/*/*/model.h5' predicts "
                   "with each.")
@audio_input_option
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), default=None,
              help="Folder for the CSVs (one model); default: DeepSpectrumLite's <model dir>/test/test/.")
@checked_configs_option
@batch_size_option
def command(model: str, data: str, output: str | None, given: GivenConfigs, batch_size: int) -> None:
    """Predict audio files (a folder, a file or a glob) with one or more models.

    Prints each file's decision and scores (the first 20 files) and writes
    <model dir>/test/test/test.chunks.predictions.csv (filename,time,prob_<class>...,prediction) and
    test.grouped.predictions.csv (per file: mean scores and decision), or into -o DIR.
    """
    from dspl.workflows.console import make_console
    from rich.table import Table

    from dspl.workflows.predict import predict

    console = make_console()
    for result in predict(model, data, given, batch_size=batch_size, out_dir=output):
        table = Table("file", "decision", *result.columns, title=str(result.model_file))
        for name, scores, decision in result.files[:SHOWN_FILES]:
            table.add_row(name, str(decision), *(f"{score:.3f}" for score in scores))
        console.print(table)
        more = len(result.files) - SHOWN_FILES
        if more > 0:
            console.print(f"... and {more} more file(s)")
        console.print(f"chunks: {result.chunks_csv}\nfiles:  {result.grouped_csv}")
