"""dspl.export.report: what each verified step is shown as (against what, its agreement, its largest difference)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dspl.export.report import ExportReport, StepCheck

STEPS = {
    "tflite_fp32": {"check": 6e-07, "max_abs_diff": 6e-07},
    "tflite_int8": {"check": 0.99, "max_abs_diff": 0.024},
    "end_to_end_int8": {"check": 0.0, "agreement_with_pytorch": 1.0, "max_abs_diff_pytorch": 0.021},
}


@pytest.mark.parametrize("file, shown", [
    ("model_fp32.tflite", ("SavedModel", None, 6e-07)),  # a float step's check is a score difference
    ("model_int8.tflite", ("float model", 0.99, 0.024)),  # a quantised step's check is its top-1 agreement
    ("model_end_to_end_int8.tflite", ("PyTorch", 1.0, 0.021)),  # end to end: against PyTorch on torch plots
    ("model_fp16.tflite", (None, None, None)),  # a step this export did not run
    ("notes.tflite", (None, None, None)),  # not a file an export writes
])
def test_each_exported_file_shows_what_it_was_verified_against(tmp_path: Path, file: str, shown: tuple):
    (tmp_path / "export_report.json").write_text(json.dumps({"steps": STEPS}), encoding="utf-8")
    assert ExportReport.read(tmp_path / "export_report.json").summary_of(tmp_path / file) == shown


def test_a_step_keeps_only_the_figures_it_measured():
    assert StepCheck(0.5, max_abs_diff=0.1).to_dict("pytorch") == {"check": 0.5, "max_abs_diff": 0.1}


def test_a_keras_models_figures_name_keras_and_read_back(tmp_path: Path):
    """A DeepSpectrumLite model's export compares with Keras's scores: its keys and the page say so; a report of an
    earlier dspl, which named those figures _pytorch, reads the same."""
    step = StepCheck(0.0, agreement=0.99, max_abs_diff_own=0.02)
    report = ExportReport("m.h5", "squeezenet_v1", "audio", 8, "keras", {"end_to_end_int8": step})
    written = json.loads(report.to_json())
    assert written["steps"]["end_to_end_int8"] == {"check": 0.0, "agreement_with_keras": 0.99,
                                                   "max_abs_diff_keras": 0.02}
    report.write(tmp_path)
    read = ExportReport.read(tmp_path / "export_report.json")
    assert read.steps == report.steps and read.summary_of(tmp_path / "model_end_to_end_int8.tflite") == \
        ("Keras", 0.99, 0.02)
    earlier = {**written, "steps": {"end_to_end_int8": {"check": 0.0, "agreement_with_pytorch": 0.99,
                                                        "max_abs_diff_pytorch": 0.02}}}
    (tmp_path / "export_report.json").write_text(json.dumps(earlier), encoding="utf-8")
    assert ExportReport.read(tmp_path / "export_report.json").steps == report.steps


@pytest.mark.parametrize("steps, quantize, agreement", [
    ({"tflite_int8": StepCheck(0.99), "end_to_end_int8": StepCheck(0.97, agreement=0.985)}, "int8", 0.97),
    ({"tflite_int8": StepCheck(0.99), "end_to_end_int8": StepCheck(1.0, agreement=0.95)}, "int8", 0.95),
    # float steps: their checks are score differences; end to end, the agreement with PyTorch counts
    ({"tflite_fp32": StepCheck(6e-7), "end_to_end_fp32": StepCheck(2e-6, agreement=0.99)}, "fp32", 0.99),
    ({"tflite_fp32": StepCheck(6e-7)}, "fp32", 1.0),  # a float image model alone: no agreement measured
    ({"tflite_fp32": StepCheck(6e-7), "tflite_int8": StepCheck(0.9)}, "fp16", 1.0),  # another quantisation's steps
])
def test_the_agreement_of_a_quantisation_is_the_lowest_its_steps_measured(steps, quantize, agreement):
    assert ExportReport("m", "b", "audio", 8, steps=steps).agreement(quantize) == agreement


@pytest.mark.parametrize("content", ["[1]", "{\"steps\": {\"onnx\": 5}}", "{not json", "\"text\"",
                                     "[" * 100000 + "]" * 100000])
def test_a_file_that_is_not_an_export_report_is_named(tmp_path: Path, content: str):
    from dspl.errors import DsplError

    path = tmp_path / "export_report.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DsplError, match=rf"^{re.escape(str(path))}: not an export report written by dspl export \("):
        ExportReport.read(path)
