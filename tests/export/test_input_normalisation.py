"""Cutting a TFLite image model's input normalisation out of its graph (dspl.export.input_normalisation)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dspl.export.input_normalisation import strip_input_normalisation
from dspl.export.tflite_convert import tflite_predict
from dspl.export.tflite_file import tflite_operators
from dspl.models import InputNormalisation

FP16_TOLERANCE = 1e-2  # float16 weights move scores by more than float32 rounding


def _plots(count: int = 32) -> np.ndarray:
    return np.random.default_rng(4).uniform(0, 255, (count, 4, 4, 3)).astype(np.float32)


@pytest.mark.parametrize("kind", ["fp32", "dynamic", "fp16", "int8"])
def test_the_chain_is_cut_and_the_model_takes_normalised_plots(normalising_models, normalisation, kind) -> None:
    model = normalising_models[kind]
    stripped = strip_input_normalisation(model, normalisation)
    assert stripped is not None
    before, after = tflite_operators(model), tflite_operators(stripped)
    chain = [name for name in before if name in ("MUL", "SUB", "DIV", "ADD")]
    assert len(chain) >= 2
    assert [name for name in after if name in ("MUL", "SUB", "DIV", "ADD")] == []
    dequantized_constants = 3 if kind == "fp16" else 0  # the chain's float16 constants go with it
    assert len(after) == len(before) - len(chain) - dequantized_constants
    assert after.count("DEQUANTIZE") == before.count("DEQUANTIZE") - dequantized_constants
    plots = _plots()
    normalised = (plots * normalisation.scale + normalisation.shift).astype(np.float32)
    reference = tflite_predict(normalising_models["fp32"], plots)
    scores = tflite_predict(stripped, normalised)
    if kind == "int8":  # as close to the float model as the int8 model with its chain (rounded constants)
        error, chain_error = (np.mean(np.abs(s - reference)) for s in (scores, tflite_predict(model, plots)))
        assert error <= chain_error * 1.25 + 1e-3, (error, chain_error)
        assert np.mean(scores.argmax(-1) == reference.argmax(-1)) >= 0.9
    else:  # fp16 stores the chain's constants in float16; cut out, the normalisation is exact
        np.testing.assert_allclose(scores, reference, atol=FP16_TOLERANCE if kind == "fp16" else 1e-5)


def test_the_quantised_input_feeds_the_chains_output_tensor(normalising_models, normalisation) -> None:
    stripped = strip_input_normalisation(normalising_models["int8"], normalisation)
    operators = tflite_operators(stripped)
    assert operators[0] == "QUANTIZE" and operators[1] != "QUANTIZE"


@pytest.mark.parametrize("change", ["mean", "std", "identity"])
def test_a_chain_computing_another_normalisation_stays(normalising_models, normalisation, change, caplog) -> None:
    other = {"mean": InputNormalisation((0.5, 0.5, 0.5), normalisation.std),
             "std": InputNormalisation(normalisation.mean, (0.5, 0.5, 0.5)),
             "identity": InputNormalisation((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))}[change]
    with caplog.at_level(logging.INFO, logger="dspl.export.input_normalisation"):
        assert strip_input_normalisation(normalising_models["int8"], other) is None
    assert "input normalisation stays in its graph" in caplog.text


def test_a_model_without_chain_stays(normalising_models, normalisation) -> None:
    assert strip_input_normalisation(normalising_models["no chain"], normalisation) is None
