"""`stats -md MODEL` (DeepSpectrumLite's README wrote `-d`; both work)."""

import json

import click

from dspl.cli.options import input_file, model_path, verbosity


@click.command("stats")
@click.option("-md", "-d", "--model-dir", "model", required=True, type=click.Path(), callback=model_path,
              help="Model file (model.h5), or the folder holding it.")
@click.option("-hc", "--hyper-config", "hp_config", type=click.Path(), default=None,
              callback=input_file("hyper-parameter config"),
              help="Optional: checked against the configuration stored in the model.")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(min=1),
              help="Forward passes timed for the latency.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def command(model: str, hp_config: str | None, runs: int, as_json: bool) -> None:
    """Parameters, FLOPs, file size and CPU latency of a model (-v: per layer).

    Prints a summary; -v adds the per-layer table, --json prints everything as JSON.
    """
    from dspl.config import GivenConfigs
    from dspl.loading import model_stats
    from dspl.workflows.stats import print_stats

    stats = model_stats(model, runs, GivenConfigs.read(hp_config))
    if as_json:
        click.echo(json.dumps(stats, indent=2))
    else:
        print_stats(stats, layers=verbosity() >= 1)
