"""`explain -md MODEL -d AUDIO -o DIR [--method gradcam|integrated-gradients|occlusion] [--target CLASS]`."""

from __future__ import annotations

import click

from dspl.cli.options import (
    audio_input_option,
    keras_configs_option,
    model_file_option,
    output_dir_option,
)
from dspl.config import GivenConfigs
from dspl.config.settings import MAX_SEED
from dspl.explain.methods import METHODS


@click.command("explain")
@model_file_option
@audio_input_option
@output_dir_option
@click.option("--method", type=click.Choice(METHODS), default="occlusion", show_default=True,
              help="Attribution method (Captum): occlusion by silent patches (the sharpest on small plots), "
                   "integrated gradients from a silent plot, or Grad-CAM on the last feature map of at least 7x7 "
                   "cells (an earlier stage on small plots).")
@click.option("--target", default=None,
              help="Class label whose score is explained; default: each chunk's predicted class.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED),
              help="Random seed (maps are deterministic).")
@keras_configs_option
def command(model: str, data: str, output: str, method: str, target: str | None, seed: int,
            given: GivenConfigs) -> None:
    """Attribution heat maps of every chunk, in seconds and hertz (PNG, NPY, CSV).

    Writes <stem>_<chunk>.png (the plot with its map, axes in seconds and hertz) and .npy, a <stem>_summary.png
    per file and regions.csv (the top time-frequency regions of every chunk). Files keep their sub-folder of -d;
    files of one folder that share a name apart from the extension (a.wav, a.flac) keep the extension in their
    output names (a.wav_0.png, a.wav_summary.png, a.flac_0.png), so that no output overwrites another.
    """
    from dspl.workflows.explain import explain

    summary = explain(model, data, output, method=method, target=target, seed=seed, given=given)
    click.echo(f"{summary.chunks} chunk(s) of {summary.files} file(s) explained in {output}; "
               f"regions {summary.regions}")
