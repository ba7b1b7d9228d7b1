"""`report -md MODEL [-d DATA -l LABELS] [-hc HP -cc CLASSES]`."""

from __future__ import annotations

import click

from dspl.cli.options import existing, input_file, keras_configs_option, model_file_option
from dspl.config import GivenConfigs


@click.command("report")
@model_file_option
@click.option("-d", "--data-dir", "data_dir", type=click.Path(), default=None,
              callback=existing("no such audio file or directory"),
              help="Audio directory: example explanations (and, with -l, data counts).")
@click.option("-l", "--label-file", "label_file", type=click.Path(), default=None,
              callback=input_file("label file"),
              help="Label file: files per partition and class; examples come from its test partition.")
@keras_configs_option
def command(model: str, data_dir: str | None, label_file: str | None, given: GivenConfigs) -> None:
    """Write a one-page HTML report of a model: config, data, curves, metrics, examples.

    Writes <model dir>/report/index.html: configuration, data, training curves, devel/test metrics, least
    confident files, exports and example explanations; no JavaScript, readable offline.
    """
    from dspl.workflows.report import write_report

    click.echo(str(write_report(model, data_dir, label_file, given)))
