"""Click options that several commands share, each defined once."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

whole_file_seconds_option = click.option(
    "--whole-file-seconds", type=click.FloatRange(min=0, min_open=True),
    help="Whole-file configs (chunk_size <= 0): the preprocessor's fixed input length in seconds. Without it the "
         "input takes any length where TFLite has the resize built in (resize_method nearest, or bilinear without "
         "anti_alias); other methods default to the longest calibration file.")


def _configs_option(hyper_help: str, class_help: str) -> Callable[[Callable], Callable]:
    """-hc/--hyper-config and -cc/--class-config, optional, with the given help texts; the command gets them read
    once, as one ``given`` argument (dspl.config.GivenConfigs)."""
    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def with_configs(*args: Any, hp_config: str | None, class_config: str | None, **kwargs: Any) -> Any:
            from dspl.config import GivenConfigs

            return command(*args, given=GivenConfigs.read(hp_config, class_config), **kwargs)

        with_configs = click.option("-cc", "--class-config", "class_config", type=click.Path(dir_okay=False),
                                    default=None, help=class_help)(with_configs)
        return click.option("-hc", "--hyper-config", "hp_config", type=click.Path(dir_okay=False), default=None,
                            help=hyper_help)(with_configs)
    return decorate


checked_configs_option = _configs_option(
    "dspl models: optional, checked against the stored configuration; DeepSpectrumLite Keras models: required.",
    "dspl models: optional, checked against the stored classes; DeepSpectrumLite Keras models: required.")
"""The configs of commands that run a model: a dspl model holds its own, a DeepSpectrumLite Keras model needs them."""

keras_configs_option = _configs_option(
    "Only for a DeepSpectrumLite Keras model.h5: the hyper-parameter config it was trained with.",
    "Only for a DeepSpectrumLite Keras model.h5: the class config it was trained with.")
"""The configs of commands that read a model file: only DeepSpectrumLite Keras models need them."""

batch_size_option = click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1),
                                 help="Chunks per forward pass.")

model_file_option = click.option("-md", "--model-dir", "model", required=True, type=click.Path(),
                                 help="Model file (model.h5 or model.ckpt).")
"""The one model file of a command that runs it (the flag keeps DeepSpectrumLite's name)."""

audio_input_option = click.option(
    "-d", "--data-dir", "data", required=True, type=click.Path(),
    help="Audio file, directory (searched recursively) or glob such as 'audio/*.wav'.")
"""The audio of a command that reads files one by one, without a label file."""

output_dir_option = click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
                                 help="Output directory (created; sub-directories of --data-dir are kept).")
"""Where a command writes one output per input file, mirroring the input's directory tree."""
