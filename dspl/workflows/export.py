"""`export` and `convert` as library functions: a model file through the Exporter (dspl.export.exporter)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dspl.config import GivenConfigs
from dspl.export.exporter import Exporter, ExportOptions, ExportResult
from dspl.loading import NO_CONFIGS, load_model_file


def export_model(model_path: str | Path, out_dir: str | Path, options: ExportOptions = ExportOptions(),
                 given: GivenConfigs = NO_CONFIGS, on_step: Callable[[str], None] | None = None) -> ExportResult:
    """Export a model file (``given``: the configs of a DeepSpectrumLite Keras model) into ``out_dir``;
    ``on_step`` is told each step as it starts."""
    return Exporter(options, on_step).export(load_model_file(model_path, given), out_dir)


def convert_model(model_path: str | Path, destination: str | Path, options: ExportOptions = ExportOptions(),
                  given: GivenConfigs = NO_CONFIGS, on_step: Callable[[str], None] | None = None) -> Path:
    """DeepSpectrumLite's `convert`: a model file as one verified image-model .tflite at ``destination`` (a
    DeepSpectrumLite Keras model needs no configs here, as its own `convert` needed none)."""
    return Exporter(options, on_step).convert(load_model_file(model_path, given, image_model=True), destination)
