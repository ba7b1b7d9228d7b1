"""SavedModel -> TFLite with built-in operators only: fp32, fp16, dynamic-range int8 and full int8."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

from dspl.errors import DsplError
from dspl.export.tflite_file import checked_model, custom_operators
from dspl.quiet import native_quiet, quiet_child
from dspl.threads import threads as policy_threads

log = logging.getLogger(__name__)

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")
"""From the least to the most quantised: fp16 halves the weights, dynamic makes them int8 (activations stay float),
int8 quantises the activations too."""
T = TypeVar("T")


def check_quantization(quantize: str, name: str = "quantize") -> None:
    """A DsplError naming the option ``name`` unless ``quantize`` is one of QUANTIZATIONS."""
    if quantize not in QUANTIZATIONS:
        raise DsplError(f"{name}: value '{quantize}': expected one of {', '.join(QUANTIZATIONS)}")


def less_quantised(quantize: str) -> tuple[str, ...]:
    """The quantisations that keep more of the float model than ``quantize``, the nearest first."""
    return QUANTIZATIONS[:QUANTIZATIONS.index(quantize)][::-1]


def convert_saved_model(saved_model: str | Path, quantize: str = "fp32", calibration: np.ndarray | None = None,
                        int8_io: bool = False) -> bytes:
    """Convert a SavedModel to TFLite bytes; `int8` needs `calibration` (model inputs, one item per row).

    `int8_io` makes a full-int8 model take int8 inputs and return int8 outputs (else they stay float32).
    Runs in a child process (see run_isolated). Raises DsplError when the result needs a Flex or custom operator.
    """
    return run_isolated(_convert, str(saved_model), quantize, calibration, int8_io,
                        what=f"TFLite {quantize} export")


def convert_and_run(saved_model: str | Path, quantize: str, calibration: np.ndarray | None, int8_io: bool,
                    inputs: np.ndarray) -> tuple[bytes, np.ndarray]:
    """convert_saved_model, then the new model's outputs for ``inputs``, both in one child process.

    TensorFlow aborts its whole process on some graphs: the converter on Xception's int8 quantisation, the
    interpreter's kernel preparation on NASNet-Large's int8 model (seen here). In a child that ends as a
    DsplError instead of killing the caller.
    """
    return run_isolated(_convert_and_run, str(saved_model), quantize, calibration, int8_io, inputs,
                        what=f"TFLite {quantize} export")


def run_isolated(function: Callable[..., T], *args: Any, what: str) -> T:
    """function(*args) in a fresh (spawned) process, as quiet as this one; a crash of it becomes a DsplError."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=quiet_child) as pool:
        try:
            return pool.submit(function, *args).result()
        except BrokenProcessPool:
            raise DsplError(f"{what}: TensorFlow crashed converting or running the model (the process "
                            "died); other quantisations of this model may still work") from None


def _convert(saved_model: str, quantize: str, calibration: np.ndarray | None, int8_io: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    representative = None if calibration is None else (lambda: ([item[None]] for item in calibration))
    configure(converter, quantize, representative, int8_io)
    return checked_convert(converter, f"{saved_model} ({quantize})")


def _convert_and_run(saved_model: str, quantize: str, calibration: np.ndarray | None, int8_io: bool,
                     inputs: np.ndarray) -> tuple[bytes, np.ndarray]:
    model = _convert(saved_model, quantize, calibration, int8_io)
    return model, tflite_predict(model, inputs)


def configure(converter, quantize: str, representative: Callable[[], Iterable[list[np.ndarray]]] | None,
              int8_io: bool = False) -> None:
    """Set a TFLiteConverter up for one quantisation with built-in operators only."""
    import tensorflow as tf

    check_quantization(quantize)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    if quantize == "fp32":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative is None:
            raise DsplError("quantize: value 'int8': full-integer quantisation needs calibration data "
                            "(a label file with a train partition, or --calibration-data DIR)")
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8


def checked_convert(converter, what: str) -> bytes:
    """Run a configured converter and assert that the model uses TFLite built-in operators only."""
    try:
        with native_quiet():
            model = converter.convert()
    except Exception as exc:  # the converter's errors are long MLIR dumps; keep the first line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DsplError(f"{what}: TFLite conversion failed: {first}") from exc
    foreign = custom_operators(model)
    if foreign:
        raise DsplError(f"{what}: the TFLite model needs non-built-in operators {foreign}")
    return model


def tflite_predict(model: str | Path | bytes, inputs: Sequence[np.ndarray], threads: int | None = None) -> np.ndarray:
    """Run a single-input TFLite model item by item; int8 inputs/outputs are (de)quantised on the way.

    Items may differ in shape where the model's input has a dynamic axis (a whole-file preprocessor): the input
    tensor is resized to each new shape.
    """
    interpreter = make_interpreter(model, threads)
    interpreter.allocate_tensors()
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    shape = list(source["shape"])
    outputs = []
    for item in inputs:
        if [1, *item.shape] != shape:
            shape = [1, *item.shape]
            interpreter.resize_tensor_input(source["index"], shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], _quantise(item[None].astype(np.float32), source))
        interpreter.invoke()
        outputs.append(_dequantise(interpreter.get_tensor(target["index"]), target))
    return np.concatenate(outputs)


def make_interpreter(model: str | Path | bytes, threads: int | None = None, name: str = "the model"):
    """A LiteRT interpreter (XNNPACK delegate by default) for a .tflite path or bytes, its tensors allocated
    (LiteRT announces the delegate on descriptor 2 then: silenced when dspl runs quietly); ``threads`` defaults to
    dspl's thread policy (dspl.threads); ``name``: what a load error calls a model given as bytes."""
    from ai_edge_litert.interpreter import Interpreter

    content = model if isinstance(model, bytes) else checked_model(model)
    try:
        interpreter = Interpreter(model_content=content, num_threads=policy_threads() if threads is None else threads)
        with native_quiet():
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        named = name if isinstance(model, bytes) else model
        raise DsplError(f"{named}: LiteRT cannot load it: {' '.join(str(exc).split())}") from None
    return interpreter


def _quantise(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(values / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantise(values: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return values.astype(np.float32)
    scale, zero = detail["quantization"]
    return ((values.astype(np.float32) - zero) * scale).astype(np.float32)
