"""`export_report.json`: what an export verified, written and read by the same type.

One entry per step under ``steps``: its ``check`` (the largest |Δ score| against the previous step for float
steps, the top-1 agreement with the float model for quantised ones — for quantised end-to-end models with the TFLite
preprocessor chained with their image model —, see the README) and, where measured, the largest |Δ score| against
that reference and an end-to-end model's agreement with the exported model's own scores, under keys that name its
framework (``agreement_with_pytorch``; ``agreement_with_keras`` for a DeepSpectrumLite Keras model). The names of
the exported files and of their steps are defined here once (`tflite_file`, `tflite_step`, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dspl.config import parse_json
from dspl.errors import DsplError
from dspl.export.tflite_convert import QUANTIZATIONS
from dspl.files import write_atomically

REPORT_FILE = "export_report.json"
FORMATS = ("onnx", "saved_model", "tflite")
"""What an export can write: an ONNX model, a TensorFlow SavedModel, TFLite models."""


def tflite_file(quantize: str) -> str:
    """The image model's file name: model_<q>.tflite."""
    return f"model_{quantize}.tflite"


def end_to_end_file(quantize: str) -> str:
    """The end-to-end model's file name: model_end_to_end_<q>.tflite."""
    return f"model_end_to_end_{quantize}.tflite"


def tflite_step(quantize: str) -> str:
    """The step (and result) name of an image model: tflite_<q>."""
    return f"tflite_{quantize}"


def end_to_end_step(quantize: str) -> str:
    """The step (and result) name of an end-to-end model: end_to_end_<q>."""
    return f"end_to_end_{quantize}"


STEP_OF_FILE: dict[str, str] = {
    **{tflite_file(q): tflite_step(q) for q in QUANTIZATIONS},
    **{end_to_end_file(q): end_to_end_step(q) for q in QUANTIZATIONS},
}
"""The verification step of each TFLite file an export writes."""


def framework_name(reference: str) -> str:
    """A reference framework as users write it: "pytorch" -> "PyTorch", "keras" -> "Keras"."""
    return "PyTorch" if reference == "pytorch" else reference.title()


def agreement_key(reference: str) -> str:
    """The key of a top-1 agreement with the model's own scores, naming their framework: agreement_with_pytorch."""
    return f"agreement_with_{reference}"


def difference_key(reference: str) -> str:
    """The key of the largest |Δ score| against the model's own scores: max_abs_diff_pytorch."""
    return f"max_abs_diff_{reference}"


@dataclass
class StepCheck:
    """The figures of one verified step (None: not measured for this step); ``agreement`` and
    ``max_abs_diff_own`` compare with the exported model's own scores (PyTorch's, or Keras's)."""

    check: float
    max_abs_diff: float | None = None
    agreement: float | None = None
    max_abs_diff_own: float | None = None

    def to_dict(self, reference: str) -> dict[str, float]:
        named = {"check": self.check, "max_abs_diff": self.max_abs_diff, agreement_key(reference): self.agreement,
                 difference_key(reference): self.max_abs_diff_own}
        return {key: value for key, value in named.items() if value is not None}

    @classmethod
    def from_dict(cls, values: dict[str, Any], reference: str) -> "StepCheck":
        """The figures of a step as to_dict wrote them (or, in a Keras model's report of an earlier dspl, under
        _pytorch keys)."""
        fields = {key: name for framework in (reference, "pytorch")
                  for key, name in ((agreement_key(framework), "agreement"),
                                    (difference_key(framework), "max_abs_diff_own"))}
        return cls(**{fields.get(key, key): value for key, value in values.items()})

    def summary(self, step: str, reference: str) -> tuple[str, float | None, float | None]:
        """What the step named ``step`` was verified against, its top-1 agreement there (None for a float image
        model, whose check is a score difference) and its largest |Δ score| there."""
        if self.agreement is not None:
            return framework_name(reference), self.agreement, self.max_abs_diff_own
        if step == tflite_step("fp32"):
            return "SavedModel", None, self.check
        return "float model", self.check, self.max_abs_diff


@dataclass
class ExportReport:
    """What one export verified: the model, its backbone, the inputs and how many, the framework its own scores
    came from, and every step's figures in the order they ran."""

    model: str
    backbone: str
    inputs: str
    verify_items: int
    reference: str = "pytorch"
    steps: dict[str, StepCheck] = field(default_factory=dict)

    def to_json(self) -> bytes:
        data: dict[str, Any] = {"model": self.model, "backbone": self.backbone, "inputs": self.inputs,
                                "verify_items": self.verify_items,
                                "steps": {name: step.to_dict(self.reference) for name, step in self.steps.items()},
                                "reference": self.reference}
        return json.dumps(data, indent=2).encode()

    def write(self, folder: Path) -> Path:
        """Write the report into ``folder`` atomically."""
        return write_atomically(folder / REPORT_FILE, self.to_json())

    @classmethod
    def read(cls, path: Path) -> "ExportReport":
        """The report of an export_report.json file; a DsplError names a file that is not one."""
        try:
            data = parse_json(path.read_bytes(), "content")
            reference = str(data.get("reference", "pytorch"))
            steps = {name: StepCheck.from_dict(values, reference) for name, values in data.get("steps", {}).items()}
            return cls(data.get("model", ""), data.get("backbone", ""), data.get("inputs", ""),
                       int(data.get("verify_items", 0)), reference, steps)
        except (DsplError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # Attribute: no dict
            raise DsplError(f"{path}: not an export report written by dspl export ({exc})") from None

    def agreement(self, quantize: str) -> float:
        """The lowest agreement this export measured for its models of one quantisation (1.0 where it measured none:
        a float image model alone, checked by its score differences):
        the top-1 agreement (regression: 1 - mean |Δ|) of quantised image and end-to-end models with their float
        reference, and of end-to-end models with the model's own scores. `dspl export` wants it >=
        verify.MIN_AGREEMENT."""
        figures = []
        for name in (tflite_step(quantize), end_to_end_step(quantize)):
            step = self.steps.get(name)
            if step is None:
                continue
            if quantize != "fp32":  # a float step's check is a score difference, not an agreement
                figures.append(step.check)
            if step.agreement is not None:
                figures.append(step.agreement)
        return min(figures, default=1.0)

    def step_of(self, tflite: Path) -> StepCheck | None:
        """The figures of the step that wrote a TFLite file of this export (None: not one of its files)."""
        return self.steps.get(STEP_OF_FILE.get(tflite.name, ""))

    def summary_of(self, tflite: Path) -> tuple[str | None, float | None, float | None]:
        """StepCheck.summary of the step that wrote a TFLite file of this export (Nones: not one of its files)."""
        step = self.step_of(tflite)
        return (None, None, None) if step is None else step.summary(STEP_OF_FILE[tflite.name], self.reference)
