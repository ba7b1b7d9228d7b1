"""The `dspl` / `deepspectrumlite` command group: global verbosity, version, and one-line user errors."""

from __future__ import annotations

import sys
from typing import Any

import click

from dspl import __version__
from dspl.errors import DsplError
from dspl.quiet import set_verbosity

# name -> (module under dspl.cli, one-line help). Modules load only when their command runs, so
# `--help` stays fast and does not import torch or tensorflow.
COMMANDS: dict[str, tuple[str, str]] = {
    "example-data": ("example_data", "Write a small deterministic multi-class audio set with labels and configs."),
    "plot": ("plot", "Write the spectrogram plot of every chunk of audio files as PNG or NPY."),
    "train": ("train", "Train one model per hyper-parameter configuration (DeepSpectrumLite compatible)."),
    "fit": ("fit", "Train with LightningCLI: YAML configs and any Trainer flag."),
    "predict": ("predict", "Predict every audio file under a directory with one or more models."),
    "devel-test": ("devel_test", "Evaluate a model on the devel and test partitions of a label file."),
    "stats": ("stats", "Parameters, FLOPs, size, per-layer table and latency of a model."),
    "convert": ("convert", "Convert a model.h5 to a TFLite model (DeepSpectrumLite compatible)."),
    "export": ("export", "Export a model to ONNX, SavedModel or TFLite (fp32, fp16, int8)."),
    "tflite-stats": ("tflite_stats", "Tensors, operators, parameters and latency of a TFLite model."),
    "benchmark": ("benchmark", "Size, latency and accuracy of every exported TFLite variant of a model."),
    "create-preprocessor": ("create_preprocessor", "Write a TFLite model: raw audio chunk -> plot image."),
    "import-keras": ("import_keras", "Port a DeepSpectrumLite Keras model.h5 into a dspl model file."),
    "explain": ("explain", "Attribution heat maps of every chunk, in seconds and hertz (PNG, NPY, CSV)."),
    "report": ("report", "Write a one-page HTML report of a model: config, data, curves, metrics, examples."),
}


class DsplGroup(click.Group):
    """A lazily loading click group that prints a DsplError as one line (traceback only with -vv)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._available(name)]

    @staticmethod
    def _available(name: str) -> bool:
        from importlib.util import find_spec

        return find_spec(f"dspl.cli.{COMMANDS[name][0]}") is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        from importlib import import_module

        return import_module(f"dspl.cli.{COMMANDS[name][0]}").command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own usage errors end as one `error: …` line with exit status 1, as DsplErrors do."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            context = getattr(exc, "ctx", None)
            hint = f" (see '{context.command_path} -h')" if isinstance(exc, click.UsageError) and context else ""
            click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(1)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DsplError as exc:
            if ctx.obj and ctx.obj.get("verbosity", 0) >= 2:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=DsplGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", "verbosity", count=True, help="-v: progress information, -vv: debug output and tracebacks.")
@click.version_option(__version__, prog_name="dspl")
@click.pass_context
def cli(ctx: click.Context, verbosity: int) -> None:
    """Train audio classifiers on spectrogram plots and export them to TensorFlow Lite.

    Compatible with DeepSpectrumLite's commands, flags and config files.
    """
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity
    set_verbosity(verbosity)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="dspl" if not sys.argv[0].endswith("deepspectrumlite") else "deepspectrumlite")
