"""`dspl fit`: LightningCLI over the training module and data module (YAML configs, any Trainer flag)."""

from __future__ import annotations

import click


@click.command("fit", add_help_option=False,
               context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Train with LightningCLI: --config file.yaml, --print_config, --trainer.* flags; see `dspl fit --help`."""
    from dspl.workflows.fit import fit

    model_file = fit(list(args))
    if model_file is not None:  # rank 0
        click.echo(f"model: {model_file}")
