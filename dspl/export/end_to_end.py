"""End-to-end TFLite models: one raw chunk [1, N] float32 -> scores, preprocessing included.

Float32: the TFLite-compatible TF plot pipeline and the onnx2tf SavedModel composed in one tf.Module and
converted with built-in operators only. Quantised variants: the float32 preprocessor graph spliced in
front of the quantised image model (`splice`), because the converter would otherwise quantise the
spectrogram itself (int8 power spectra lose everything below the loudest bins), and its node deny-list
does not hold the whole preprocessing in float.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dspl.errors import DsplError
from dspl.export import tflite_file
from dspl.export.tf_convert import SIGNATURE
from dspl.export.tflite_convert import checked_convert
from dspl.quiet import native_quiet
from dspl.spec import PreprocessingSpec

log = logging.getLogger(__name__)

INPUT_NAME = "audio"


def compose_fp32(spec: PreprocessingSpec, image_saved_model: str | Path, num_samples: int | None = None) -> bytes:
    """Float32 end-to-end .tflite bytes: the TFLite-compatible TFPlotPipeline -> the SavedModel -> scores.

    ``num_samples``: the input length (default the chunk length; 0 any length, see TFPlotPipeline).
    """
    import tensorflow as tf

    from dspl.export.tf_reference import TFPlotPipeline

    pipeline = TFPlotPipeline(spec, tflite_compatible=True, num_samples=num_samples)
    with native_quiet():
        image_model = tf.saved_model.load(str(image_saved_model))
    serve = image_model.signatures[SIGNATURE]
    (plot_name,) = serve.structured_input_signature[1]
    length = pipeline.num_samples or None

    class EndToEnd(tf.Module):
        """Raw chunk -> plot -> scores."""

        def __init__(self) -> None:
            super().__init__(name="dspl_end_to_end")
            self.pipeline, self.image_model = pipeline, image_model

        @tf.function(input_signature=[tf.TensorSpec([1, length], tf.float32, name=INPUT_NAME)])
        def __call__(self, audio: tf.Tensor) -> dict[str, tf.Tensor]:
            scores = next(iter(serve(**{plot_name: self.pipeline(audio)}).values()))
            return {"scores": scores}

    module = EndToEnd()
    with native_quiet():
        function = module.__call__.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    model = checked_convert(converter, "end-to-end model (fp32)")
    log.info("composed the fp32 end-to-end model: [1, %s] -> scores, %d bytes", length or "any", len(model))
    return model


def splice(preprocessor: bytes, image_model: bytes) -> bytes:
    """One .tflite whose graph runs the preprocessor's graph, then the image model's on its output.

    Both models must have one subgraph, one input and one output, and the preprocessor's output shape must
    be the image model's input shape (a float32 input; quantised models quantise it themselves).
    """
    first, merged = tflite_file.unpack(preprocessor), tflite_file.unpack(image_model)
    if len(first.subgraphs) != 1 or len(merged.subgraphs) != 1:
        raise DsplError("end-to-end model: the preprocessor and the image model must have one subgraph each")
    pre, image = first.subgraphs[0], merged.subgraphs[0]
    (pre_out,), (image_in,) = list(pre.outputs), list(image.inputs)
    out_tensor, in_tensor = pre.tensors[pre_out], image.tensors[image_in]
    if list(out_tensor.shape) != list(in_tensor.shape) or in_tensor.type != tflite_file.schema().TensorType.FLOAT32:
        raise DsplError(f"end-to-end model: preprocessor output {list(out_tensor.shape)} does not fit the image "
                        f"model input {list(in_tensor.shape)} (float32 expected)")
    tensor_offset, buffer_offset = len(image.tensors), len(merged.buffers)
    opcode_index = {}
    for index, code in enumerate(first.operatorCodes):
        key = (code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version)
        known = [i for i, c in enumerate(merged.operatorCodes)
                 if (c.builtinCode, c.deprecatedBuiltinCode, c.customCode, c.version) == key]
        if not known:
            merged.operatorCodes.append(code)
            known = [len(merged.operatorCodes) - 1]
        opcode_index[index] = known[0]
    merged.buffers.extend(first.buffers)
    for tensor in pre.tensors:
        tensor.buffer += buffer_offset
        image.tensors.append(tensor)

    def shift(indices) -> list[int]:
        return [int(i) + tensor_offset if int(i) >= 0 else int(i) for i in (indices if indices is not None else [])]

    for operator in pre.operators:
        operator.opcodeIndex = opcode_index[operator.opcodeIndex]
        operator.inputs, operator.outputs = shift(operator.inputs), shift(operator.outputs)
        operator.intermediates = shift(operator.intermediates) or None
    plot = pre_out + tensor_offset
    for operator in image.operators:
        operator.inputs = [plot if int(i) == image_in else int(i) for i in operator.inputs]
    image.operators = list(pre.operators) + list(image.operators)
    image.inputs = shift(pre.inputs)
    for signature in merged.signatureDefs or []:
        (entry,) = signature.inputs
        entry.name, entry.tensorIndex = INPUT_NAME.encode(), image.inputs[0]
    spliced = tflite_file.pack(merged, len(preprocessor) + len(image_model))
    log.info("spliced the preprocessor (%d operators) in front of the image model (%d operators)",
             len(pre.operators), len(image.operators) - len(pre.operators))
    return spliced
