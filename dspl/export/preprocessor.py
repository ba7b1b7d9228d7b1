"""The TFLite preprocessor (raw chunk [1, N] -> plot [1, H, W, 3] on 0..255) and a .tflite operator lister."""

from __future__ import annotations

import logging
from pathlib import Path

from dspl.config import HParams
from dspl.errors import DsplError
from dspl.files import write_atomically

log = logging.getLogger(__name__)


def create_preprocessor(hp: HParams, destination: str | Path, num_samples: int | None = None) -> Path:
    """Convert the TFLite-compatible TF pipeline for one [1, N] float32 chunk and write it atomically.

    ``num_samples`` fixes N for whole-file configurations (chunk_size <= 0, see PreprocessingSpec.input_samples);
    without it their preprocessor takes any length (the client resizes the input tensor), which needs a resize
    with a built-in TFLite kernel.
    """
    import tensorflow as tf

    from dspl.export.tf_reference import TFPlotPipeline

    destination = Path(destination)
    pipeline = TFPlotPipeline.from_hp(hp, tflite_compatible=True, num_samples=num_samples)
    function = pipeline.concrete_function(batch_size=1)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], pipeline)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    model = converter.convert()
    foreign = custom_operators(model)
    if foreign:
        raise DsplError(f"{destination}: the preprocessor needs non-built-in TFLite operators {foreign}")
    write_atomically(destination, model)
    log.info("wrote %s: [1, %s] -> %s, %d bytes", destination, pipeline.num_samples or "any",
             (1, *pipeline.output_shape), len(model))
    return destination


def tflite_operators(model: str | Path | bytes) -> list[str]:
    """Operator names of every operator in every subgraph of a .tflite file (or its bytes), in graph order.

    Built-in operators carry their schema name (e.g. ``FULLY_CONNECTED``); custom ones their custom code
    (Flex operators read ``Flex<TF op>``).
    """
    return [name for name, _ in _operators(model)]


def custom_operators(model: str | Path | bytes) -> list[str]:
    """The sorted distinct operators of a .tflite file that are not TFLite built-ins (Flex or custom)."""
    return sorted({name for name, builtin in _operators(model) if not builtin})


def _operators(model: str | Path | bytes) -> list[tuple[str, bool]]:
    """(name, is built-in) of every operator, read from the flatbuffer with TFLite's generated schema."""
    from tensorflow.lite.python import schema_py_generated as schema

    data = model if isinstance(model, bytes) else _read(Path(model))
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise DsplError(f"{'<bytes>' if isinstance(model, bytes) else model}: not a TFLite model file")
    root = schema.Model.GetRootAsModel(data, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append((code.CustomCode().decode("utf-8"), False))
        else:
            codes.append((names.get(builtin, f"BUILTIN_{builtin}"), True))
    return [codes[root.Subgraphs(s).Operators(o).OpcodeIndex()]
            for s in range(root.SubgraphsLength()) for o in range(root.Subgraphs(s).OperatorsLength())]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DsplError(f"{path}: file not found") from None
    except OSError as exc:
        raise DsplError(f"{path}: cannot read: {exc.strerror}") from None
