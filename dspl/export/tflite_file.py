"""The .tflite flatbuffer: reading it, its operators and constant tensors, and writing a changed model back.

The one place that imports the generated TFLite schema (LiteRT's ``schema_py_generated``: the same schema
as TensorFlow's, without loading TensorFlow, seconds a command that only reads a model does not need to spend)
and knows the file identifier; the exporter's splicing and metadata, and `tflite-stats`, go through here.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from dspl.errors import DsplError
from dspl.files import regular_file

FILE_IDENTIFIER = b"TFL3"
PARSE_ERRORS = (struct.error, IndexError, KeyError, ValueError, TypeError, AttributeError, OverflowError,
                UnicodeDecodeError)
"""What the generated schema code raises on a truncated or damaged flatbuffer."""
NUMPY_TYPES = {"FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT8": np.int8,
               "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
               "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64, "BOOL": np.bool_}


def schema() -> Any:
    """The generated Python module of the TFLite flatbuffer schema (LiteRT's)."""
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def read_model(model: str | Path | bytes) -> bytes:
    """The bytes of a .tflite file (or the bytes given), checked to be a TFLite flatbuffer."""
    if isinstance(model, bytes):
        data, name = model, "<bytes>"
    else:
        name = str(model)
        try:
            data = Path(model).read_bytes()
        except FileNotFoundError:
            raise DsplError(f"{model}: file not found") from None
        except OSError as exc:
            raise DsplError(f"{model}: cannot read: {exc.strerror}") from None
    if len(data) < 8 or not schema().Model.ModelBufferHasIdentifier(data, 0):
        raise DsplError(f"{name}: not a TFLite model file")
    return data


def unpack(model: str | Path | bytes) -> Any:
    """The model as the schema's mutable object tree (``ModelT``)."""
    return _tree(read_model(model), "<bytes>" if isinstance(model, bytes) else str(model))


def _tree(data: bytes, name: str) -> Any:
    try:
        return schema().ModelT.InitFromPackedBuf(bytearray(data), 0)
    except PARSE_ERRORS as exc:
        raise _damaged(name, exc) from None


def _damaged(name: str, exc: Exception) -> DsplError:
    return DsplError(f"{name}: a damaged TFLite model file ({type(exc).__name__}: {' '.join(str(exc).split())})")


def checked_model(model: str | Path) -> bytes:
    """The bytes of a .tflite file, checked whole before a native interpreter reads it: a special file, a file
    that is not TFLite, or a truncated or damaged flatbuffer is a DsplError naming the file (LiteRT read a
    truncated model past its end and crashed the process)."""
    path = regular_file(model, "TFLite model file")
    data = read_model(path)
    tree = _tree(data, str(path))
    try:  # the strings the schema code leaves as bytes: operator codes and tensor names
        operators(data)
        for subgraph in tree.subgraphs or []:
            for tensor in subgraph.tensors or []:
                (tensor.name or b"").decode()
    except PARSE_ERRORS as exc:
        raise _damaged(str(path), exc) from None
    if any(buffer.offset > 1 and buffer.offset + buffer.size > len(data) for buffer in tree.buffers or []):
        raise DsplError(f"{path}: a damaged TFLite model file (its weights lie beyond its end: truncated?)")
    return data


def pack(tree: Any, size_hint: int = 0) -> bytes:
    """A ``ModelT`` tree written back as .tflite bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 4096)
    builder.Finish(tree.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def operators(model: str | Path | bytes) -> list[tuple[str, bool]]:
    """(name, is built-in) of every operator in every subgraph, in graph order.

    Built-in operators carry their schema name (e.g. ``FULLY_CONNECTED``); custom ones their custom code
    (Flex operators read ``Flex<TF op>``).
    """
    tflite = schema()
    data = read_model(model)
    root = tflite.Model.GetRootAsModel(data, 0)
    names = {value: name for name, value in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CUSTOM:
            codes.append((code.CustomCode().decode("utf-8"), False))
        else:
            codes.append((names.get(builtin, f"BUILTIN_{builtin}"), True))
    return [codes[root.Subgraphs(s).Operators(o).OpcodeIndex()]
            for s in range(root.SubgraphsLength()) for o in range(root.Subgraphs(s).OperatorsLength())]


def tflite_operators(model: str | Path | bytes) -> list[str]:
    """Operator names of every operator in every subgraph of a .tflite file (or its bytes), in graph order."""
    return [name for name, _ in operators(model)]


def custom_operators(model: str | Path | bytes) -> list[str]:
    """The sorted distinct operators of a .tflite file that are not TFLite built-ins (Flex or custom)."""
    return sorted({name for name, builtin in operators(model) if not builtin})


def constant_tensors(model: str | Path | bytes) -> list[dict[str, Any]]:
    """Every tensor with stored data: subgraph, index, name, shape, type, quantisation and values."""
    tree = unpack(model)
    type_names = {value: name for name, value in vars(schema().TensorType).items() if not name.startswith("_")}
    constants = []
    for subgraph_index, subgraph in enumerate(tree.subgraphs):
        for index, tensor in enumerate(subgraph.tensors):
            data = tree.buffers[tensor.buffer].data if tensor.buffer < len(tree.buffers) else None
            if data is None or len(data) == 0:
                continue
            type_name = type_names.get(tensor.type, str(tensor.type))
            shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
            values = np.frombuffer(np.asarray(data, np.uint8).tobytes(), NUMPY_TYPES[type_name]).reshape(shape) \
                if type_name in NUMPY_TYPES else np.asarray(data, np.uint8)
            quant = tensor.quantization
            constants.append({
                "subgraph": subgraph_index, "index": index, "name": (tensor.name or b"").decode(),
                "shape": shape, "type": type_name, "size": int(np.prod(shape)) if shape else 1, "values": values,
                "scale": list(quant.scale) if quant is not None and quant.scale is not None else [],
                "zero_point": list(quant.zeroPoint) if quant is not None and quant.zeroPoint is not None else [],
            })
    return constants
