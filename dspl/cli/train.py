"""`train`: DeepSpectrumLite's training command with its flags, one model per hyper-parameter configuration."""

from __future__ import annotations

from pathlib import Path

import click

from dspl.cli.options import training_options


@click.command("train", context_settings={"help_option_names": ["-h", "--help"]})
@training_options("Output directory: logs/<tb_experiment>/... and models/<tb_experiment>/...",
                  "Hyper-parameter grid (JSON of lists).")
@click.option("--restart", is_flag=True,
              help="Train every configuration from scratch, replacing its model, checkpoints and TensorBoard events "
                   "(without it a re-run skips finished configurations and resumes an interrupted one).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True,
              help="Train in channels_last memory format where the device gains (CPUs, CUDA from Volta).")
@click.option("--mixed-precision/--no-mixed-precision", default=True, show_default=True,
              help="Train with bf16 autocast where it is faster: GPUs from Ampere; CPUs with AMX, for models "
                   "without depthwise (grouped) convolutions.")
def command(data_dir: str, model_dir: str, hyper_config: str, class_config: str, label_file: str,
            disable_cache: bool, restart: bool, channels_last: bool, mixed_precision: bool) -> None:
    """Train one model per hyper-parameter configuration (DeepSpectrumLite compatible).

    A re-run of the same command skips finished configurations and resumes an interrupted one from its last
    epoch checkpoint.
    """
    from dspl.workflows.console import make_console

    from dspl.workflows.report import write_report
    from dspl.workflows.train import (
        ConfigurationResult,
        TrainingData,
        TrainOptions,
        train,
    )

    console = make_console()
    data = TrainingData(Path(data_dir), Path(label_file))

    def report(result: ConfigurationResult) -> None:
        if not result.skipped:
            console.print(f"model: {result.model_file}")
            console.print(f"report: {write_report(result.model_file, data.data_dir, data.label_file)}")

    options = TrainOptions(restart=restart, cache=not disable_cache, channels_last=channels_last,
                           mixed_precision=mixed_precision)
    train(data, model_dir, hyper_config, class_config, options, console, on_result=report)
