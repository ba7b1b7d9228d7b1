"""TFLite metadata (dspl.export.metadata): the model stays runnable and carries its label and preprocessing
files."""

from __future__ import annotations

import json

import numpy as np

from dspl.export import tflite_file
from dspl.export.metadata import LABELS_FILE, PREPROCESSING_FILE, ModelInfo, add_metadata, associated_files
from dspl.export.tflite_convert import tflite_predict


def test_metadata_keeps_the_model_runnable_and_carries_files(parts) -> None:
    info = ModelInfo(name="m", description="d", version="1", labels=["x", "y", "z"], input_name="audio",
                     input_description="chunk", output_description="scores", sample_rate=16000,
                     preprocessing={"sample_rate": 16000})
    model = add_metadata(parts["image_fp32"], info)
    plot = np.full((1, 2, 2, 3), 100.0, np.float32)
    np.testing.assert_array_equal(tflite_predict(model, plot), tflite_predict(parts["image_fp32"], plot))
    files = associated_files(model)
    assert files[LABELS_FILE] == b"x\ny\nz\n"
    assert json.loads(files[PREPROCESSING_FILE]) == {"sample_rate": 16000}
    again = add_metadata(model[: len(model)], info)  # replacing metadata keeps one TFLITE_METADATA entry
    names = [entry.name for entry in tflite_file.unpack(again).metadata]
    assert names.count(b"TFLITE_METADATA") == 1
