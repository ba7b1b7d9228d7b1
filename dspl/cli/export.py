"""`export`: a model file to ONNX, SavedModel and TFLite (fp32/fp16/dynamic/int8), optionally end-to-end."""

from __future__ import annotations

from pathlib import Path

import click

from dspl.cli.options import input_file, keras_configs_option, model_path, whole_file_seconds_option
from dspl.config import GivenConfigs
from dspl.export.report import FORMATS
from dspl.export.tflite_convert import QUANTIZATIONS


@click.command(name="export", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-s", "--source", required=True, type=click.Path(), callback=model_path,
              help="The model file (dspl's model.h5, or DeepSpectrumLite's with -hc and -cc), or its folder.")
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False), help="Directory to write to.")
@click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS), default=("tflite",),
              show_default=True, help="Output format (repeatable).")
@click.option("--quantize", multiple=True, type=click.Choice(QUANTIZATIONS), default=("fp32",), show_default=True,
              help="TFLite quantisation (repeatable); int8 needs calibration audio.")
@click.option("--end-to-end", is_flag=True,
              help="Also write raw chunk [1, N] -> scores models with TFLite metadata (labels, sample rate).")
@click.option("--int8-io", is_flag=True, help="Full-int8 image models take and return int8 tensors.")
@click.option("--calibration-data", type=click.Path(exists=True, file_okay=False),
              help="Directory of audio files for calibration and verification.")
@click.option("-d", "--data-dir", type=click.Path(exists=True, file_okay=False),
              help="Audio directory of the label file (calibration on its train partition).")
@click.option("-l", "--label-file", type=click.Path(exists=True, dir_okay=False), callback=input_file("label file"),
              help="Label file: train partition calibrates, devel partition verifies.")
@keras_configs_option
@whole_file_seconds_option("other methods take the longest calibration file's length")
def command(source: str, output_dir: str, formats: tuple[str, ...], quantize: tuple[str, ...], end_to_end: bool,
            int8_io: bool, calibration_data: str | None, data_dir: str | None, label_file: str | None,
            given: GivenConfigs, whole_file_seconds: float | None) -> None:
    """Export a model to ONNX, SavedModel or TFLite (fp32, fp16, dynamic-range or full int8), each step verified."""
    from dspl.export.exporter import ExportOptions
    from dspl.export.inputs import InputSources
    from dspl.workflows.export import export_model
    from dspl.workflows.progress import step_status

    sources = InputSources(*(None if p is None else Path(p) for p in (calibration_data, data_dir, label_file)),
                           whole_file_seconds=whole_file_seconds)
    options = ExportOptions(formats=formats, quantize=quantize, end_to_end=end_to_end, int8_io=int8_io,
                            inputs=sources)
    with step_status("export") as on_step:
        written = export_model(source, output_dir, options, given, on_step).files
    for name, path in written.items():
        click.echo(f"{name}: {path}")
