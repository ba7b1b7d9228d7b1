"""End-to-end models (dspl.export.end_to_end): splicing a preprocessor and an image model into one graph."""

from __future__ import annotations

import numpy as np
import pytest

from dspl.errors import DsplError
from dspl.export.tflite_convert import tflite_predict
from dspl.export.tflite_file import custom_operators


def test_splice_runs_the_two_graphs_in_sequence(parts) -> None:
    from dspl.export.end_to_end import splice

    merged = splice(parts["pre"], parts["image"])
    assert custom_operators(merged) == []
    audio = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    plots = tflite_predict(parts["pre"], audio)
    np.testing.assert_array_equal(tflite_predict(merged, audio), tflite_predict(parts["image"], plots))


def test_splice_rejects_a_shape_mismatch(parts) -> None:
    from dspl.export.end_to_end import splice

    with pytest.raises(DsplError, match="does not fit"):
        splice(parts["image_fp32"], parts["image"])
