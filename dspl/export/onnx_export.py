"""PyTorch -> ONNX (opset >= 17) with onnx.checker, and ONNX Runtime inference for verification."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dspl.errors import DsplError

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "plot"
OUTPUT_NAME = "scores"


def export_onnx(model: torch.nn.Module, input_shape: Sequence[int], path: str | Path, opset: int = OPSET) -> Path:
    """Export an eval-mode model for one NCHW input [1, C, H, W] to ONNX, simplify it and check the graph.

    The ONNX model keeps PyTorch's NCHW layout; onnx2tf turns it into NHWC on the TensorFlow side.
    onnxsim folds what depends on parameters only (e.g. ARelu's clamp(α)), which onnx2tf cannot convert;
    onnx2tf would run onnxsim itself only as a console script found on PATH.
    """
    import onnx
    import onnxsim

    if opset < OPSET:
        raise DsplError(f"opset: value {opset}: expected an ONNX opset >= {OPSET}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.zeros(1, *input_shape, dtype=torch.float32)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        torch.onnx.export(model, (example,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          opset_version=opset, dynamo=False, do_constant_folding=True)
    simplified, valid = onnxsim.simplify(onnx.load(str(path)))
    if not valid:
        log.warning("%s: onnxsim could not verify its simplification; keeping the graph as exported", path)
        simplified = onnx.load(str(path))
    onnx.save(tensorflow_node_names(explicit_pooling_pads(simplified)), str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise DsplError(f"{path}: the exported ONNX graph is invalid: {exc}") from exc
    log.info("wrote %s (opset %d, input %s)", path, opset, [1, *input_shape])
    return path


def onnx_predict(path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """Run an ONNX model item by item (its batch axis is fixed to 1) with ONNX Runtime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: item[None].astype(np.float32)})[0] for item in inputs])


def tensorflow_node_names(model):
    """Make node names valid TensorFlow op names (torch's start with '/'), which onnx2tf needs to save a model."""
    for index, node in enumerate(model.graph.node):
        name = re.sub(r"[^A-Za-z0-9_./>-]", "_", node.name).lstrip("/_-") or f"node_{index}"
        node.name = name if re.match(r"[A-Za-z0-9.]", name) else f"n{name}"
    return model


NONNEGATIVE_OPS = ("Relu", "Sigmoid", "Softmax", "Abs")
NONNEGATIVE_IF_INPUTS = ("Concat", "MaxPool", "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze")


def explicit_pooling_pads(model):
    """Rewrite padded or ceil-mode MaxPool on non-negative inputs as Pad(0) + unpadded MaxPool: the same values.

    onnx2tf pads such pooling with the float minimum, which wrecks full-int8 calibration (a scale of ~1e36
    for the padded tensor, and XNNPACK refuses the model); zero padding is exact after a ReLU.
    """
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input]}
    producers = {output: node for node in model.graph.node for output in node.output}

    def nonnegative(name: str, depth: int = 0) -> bool:
        node = producers.get(name)
        if node is None or depth > 16:
            return False
        if node.op_type in NONNEGATIVE_OPS:
            return True
        if node.op_type == "Clip" and len(node.input) > 1 and node.input[1]:
            low = next((numpy_helper.to_array(t) for t in model.graph.initializer if t.name == node.input[1]), None)
            return low is not None and float(low) >= 0.0
        if node.op_type in NONNEGATIVE_IF_INPUTS:
            return all(nonnegative(i, depth + 1) for i in node.input[:1 if node.op_type != "Concat" else None] if i)
        return False

    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        shape = shapes.get(node.input[0], [])
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        padded_pool = node.op_type == "MaxPool" and len(node.output) == 1 and (attrs.get("ceil_mode") or any(pads))
        explicit = attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        if not (padded_pool and explicit and len(shape) == 4 and 0 not in shape and nonnegative(node.input[0])):
            nodes.append(node)
            continue
        kernel, strides = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        ends = [_ceil_end_padding(shape[2 + i], kernel[i], strides[i], dilations[i], pads[i], pads[2 + i])
                if attrs.get("ceil_mode") else 0 for i in range(2)]
        padded = f"{node.output[0]}__ceil_pad"
        widths = numpy_helper.from_array(np.array([0, 0, pads[0], pads[1], 0, 0, pads[2] + ends[0],
                                                   pads[3] + ends[1]], np.int64), f"{padded}_widths")
        model.graph.initializer.append(widths)
        nodes.append(helper.make_node("Pad", [node.input[0], widths.name], [padded], mode="constant"))
        nodes.append(helper.make_node("MaxPool", [padded], list(node.output), name=node.name, kernel_shape=kernel,
                                      strides=strides, dilations=dilations, ceil_mode=0))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _ceil_end_padding(length: int, kernel: int, stride: int, dilation: int, begin: int, end: int) -> int:
    """Extra end padding that makes floor-mode pooling produce ceil-mode's output length (PyTorch's rule)."""
    span = dilation * (kernel - 1) + 1
    out = -(-(length + begin + end - span) // stride) + 1
    if (out - 1) * stride >= length + begin:
        out -= 1
    return max(0, (out - 1) * stride + span - (length + begin + end))
