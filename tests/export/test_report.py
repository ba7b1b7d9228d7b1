"""dspl.export.report: what each verified step is shown as (against what, its agreement, its largest difference)."""

from __future__ import annotations

import json
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
    assert StepCheck(0.5, max_abs_diff=0.1).to_dict() == {"check": 0.5, "max_abs_diff": 0.1}
