"""A TFLite image model's input normalisation, found in its graph and cut out for an end-to-end model.

A classifier normalises its 0..255 plots per channel as ``(x/255 − mean)/std``. In a TFLite image model that is a
chain of elementwise operators with constant operands on the [1, H, W, 3] input, in int8 models after the input's
QUANTIZE: per-channel broadcasts that int8 TFLite runs outside XNNPACK's fast path (1.2 of 5.3 ms for mobilenet_v2
on one thread, bench/RESULTS.md). An end-to-end model's float preprocessor can write the normalised plot itself
(TFPlotPipeline's ``normalisation``, free: folded into its colour table), so its image model needs no chain: the
input then feeds, or is quantised into, the tensor the chain produced, with that tensor's own quantisation.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dspl.export import tflite_file
from dspl.models.classifier import InputNormalisation

log = logging.getLogger(__name__)

ELEMENTWISE = ("MUL", "DIV", "ADD", "SUB")
MATCH_TOLERANCE = 0.02
"""Relative tolerance of the chain's constants against the normalisation: int8 constants are stored to ~0.5 %."""


def strip_input_normalisation(image_model: bytes, normalisation: InputNormalisation) -> bytes | None:
    """The image model with its input normalisation chain removed, taking normalised plots; None where its graph
    does not start with a chain that computes exactly ``normalisation`` (the model is then used as it is)."""
    tree = tflite_file.unpack(image_model)
    if len(tree.subgraphs) != 1 or len(tree.subgraphs[0].inputs) != 1:
        return None
    graph = tree.subgraphs[0]
    names = [name for name, _builtin in tflite_file.operators(image_model)]
    constants = {entry["index"]: entry for entry in tflite_file.constant_tensors(image_model)}
    consumers: dict[int, list[int]] = {}
    for index, operator in enumerate(graph.operators):
        for tensor in operator.inputs:
            consumers.setdefault(int(tensor), []).append(index)
    dequantized = {int(op.outputs[0]): op for op, name in zip(graph.operators, names) if name == "DEQUANTIZE"}
    channels = len(normalisation.mean)
    scale, shift = np.ones(channels), np.zeros(channels)
    quantize, chain = None, []
    tensor = int(graph.inputs[0])
    following = consumers.get(tensor, [])
    if len(following) == 1 and names[following[0]] == "QUANTIZE":
        quantize = following[0]
        tensor = int(graph.operators[quantize].outputs[0])
    while len(consumers.get(tensor, [])) == 1 and names[consumers[tensor][0]] in ELEMENTWISE:
        index = consumers[tensor][0]
        step = _affine_step(graph.operators[index], names[index], tensor, channels, constants, dequantized)
        if step is None:
            break
        factor, offset = step
        scale, shift = scale * factor, shift * factor + offset
        chain.append(index)
        tensor = int(graph.operators[index].outputs[0])
    if not chain or not _computes(scale, shift, normalisation):
        log.info("the image model's input normalisation stays in its graph (no chain of %s computing it)",
                 "/".join(ELEMENTWISE))
        return None
    if quantize is not None:
        graph.operators[quantize].outputs = [tensor]
    else:  # a float model: the chain's output becomes the input, under the input's name
        graph.tensors[tensor].name = graph.tensors[int(graph.inputs[0])].name
        graph.inputs = [tensor]
        for signature in tree.signatureDefs or []:
            signature.inputs[0].tensorIndex = tensor
    kept = [operator for index, operator in enumerate(graph.operators) if index not in chain]
    used = {int(i) for operator in kept for i in operator.inputs} | {int(i) for i in graph.outputs}
    unused = {id(op) for tensor, op in dequantized.items() if tensor not in used}  # float16 constants of the chain
    graph.operators = [operator for operator in kept if id(operator) not in unused]
    log.info("cut the image model's input normalisation (%s) out of its graph",
             ", ".join(names[index] for index in chain))
    return tflite_file.pack(tree, len(image_model))


def _constant(index: int, channels: int, constants: dict[int, dict[str, Any]],
              producers: dict[int, Any]) -> np.ndarray | None:
    """A constant operand as per-channel float values (dequantised; float16 constants through their DEQUANTIZE),
    None if it is not a scalar or per-channel constant."""
    dequantize = producers.get(index)
    if dequantize is not None:
        if len(dequantize.inputs) != 1:
            return None
        index = int(dequantize.inputs[0])
    entry = constants.get(index)
    if entry is None or entry["type"] not in tflite_file.NUMPY_TYPES:
        return None
    values = np.asarray(entry["values"], np.float64).reshape(-1)
    if entry["scale"]:
        scale, zero = np.asarray(entry["scale"], np.float64), np.asarray(entry["zero_point"], np.float64)
        if scale.size not in (1, values.size):
            return None
        values = (values - zero) * scale
    if values.size not in (1, channels):
        return None
    return np.broadcast_to(values, (channels,))


def _affine_step(operator: Any, name: str, tensor: int, channels: int, constants: dict[int, dict[str, Any]],
                 producers: dict[int, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """``operator`` applied to ``tensor`` and a constant as x ↦ x·factor + offset per channel: (factor, offset);
    None if it is not such an operator (two variable inputs, a fused activation, a constant of another shape)."""
    if len(operator.inputs) != 2 or getattr(operator.builtinOptions, "fusedActivationFunction", 0):
        return None
    first, second = (int(i) for i in operator.inputs)
    variable_first = first == tensor
    constant = _constant(second if variable_first else first, channels, constants, producers)
    if constant is None:
        return None
    one, zero = np.ones(channels), np.zeros(channels)
    if name == "MUL":
        return constant, zero
    if name == "ADD":
        return one, constant
    if name == "SUB":
        return (one, -constant) if variable_first else (-one, constant)
    if name == "DIV" and variable_first:
        return 1.0 / constant, zero
    return None


def _computes(scale: np.ndarray, shift: np.ndarray, normalisation: InputNormalisation) -> bool:
    """Whether x·scale + shift is the normalisation, within the precision of stored constants."""
    return bool(np.allclose(scale, normalisation.scale, rtol=MATCH_TOLERANCE, atol=0.0)
                and np.allclose(shift, normalisation.shift, rtol=MATCH_TOLERANCE, atol=MATCH_TOLERANCE))
