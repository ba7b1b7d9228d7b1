"""TFLite conversion in its own process (dspl.export.tflite_convert): a crash there is a clear error."""

from __future__ import annotations

import pytest

from dspl.errors import DsplError


def test_a_converter_that_kills_its_process_ends_as_a_clear_error() -> None:
    import os

    from dspl.export.tflite_convert import run_isolated

    assert run_isolated(divmod, 7, 2, what="x") == (3, 1)
    with pytest.raises(DsplError, match=r"model.onnx \(int8\): TensorFlow crashed converting or running the model"):
        run_isolated(os.abort, what="model.onnx (int8)")


def test_less_quantised_lists_what_keeps_more_of_the_float_model_nearest_first() -> None:
    from dspl.export.tflite_convert import less_quantised

    assert less_quantised("int8") == ("dynamic", "fp16", "fp32")
    assert less_quantised("dynamic") == ("fp16", "fp32")
    assert less_quantised("fp16") == ("fp32",)
    assert less_quantised("fp32") == ()


def test_a_converter_is_not_configured_for_an_unknown_quantisation() -> None:
    from dspl.export.tflite_convert import configure

    with pytest.raises(DsplError) as error:
        configure(object(), "int4", None)
    assert str(error.value) == "quantize: value 'int4': expected one of fp32, fp16, dynamic, int8"
