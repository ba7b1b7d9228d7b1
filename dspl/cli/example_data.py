"""`dspl example-data`: write the small deterministic example data set with its labels and configs."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("example-data")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write audio/, label.csv, regression_label.csv and the configs to. Never "
                   "overwrites a file: those of an earlier run with the same options are left as they are; any other "
                   "file in the way stops the command before it writes anything.")
@click.option("--files-per-class", default=24, show_default=True, type=click.IntRange(min=1),
              help="Training files per class; devel and test get a third of that each (at least one).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Random seed.")
def command(output: Path, files_per_class: int, seed: int) -> None:
    """Write a small deterministic multi-class audio set (16 kHz WAV, ComParE naming), labels and configs."""
    from dspl.data.example import write_example_data

    out_dir = write_example_data(output, files_per_class=files_per_class, seed=seed)
    click.echo(f"example data written to {out_dir}: train with\n"
               f"  dspl train -d {out_dir / 'audio'} -l {out_dir / 'label.csv'} "
               f"-hc {out_dir / 'hp_config.json'} -cc {out_dir / 'class_config.json'} -md <output dir>")
