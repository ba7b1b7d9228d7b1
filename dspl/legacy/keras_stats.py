"""`stats` of a DeepSpectrumLite Keras model: parameters, FLOPs (TensorFlow's profiler), layers, CPU latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dspl.latency import time_calls
from dspl.quiet import native_quiet
from dspl.legacy.keras_model import load_keras


def _flops(model: Any, shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts 2), from TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    graph = convert_variables_to_constants_v2(function).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)


def _layers(model: Any) -> list[dict[str, Any]]:
    """Every layer (nested models expanded) with its type, output shape and parameter count."""
    rows = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            rows.extend({**row, "name": f"{layer.name}/{row['name']}"} for row in _layers(layer))
            continue
        shape = layer.output_shape
        rows.append({"name": layer.name, "type": type(layer).__name__,
                     "output_shape": list(shape) if isinstance(shape, tuple) else shape,
                     "params": int(layer.count_params())})
    return rows


def _forward_latency(model: Any, x: np.ndarray, runs: int) -> dict[str, Any]:
    """Latency of one forward pass (training=False) on the CPU, summarised as dspl.latency does."""
    return time_calls({"the Keras model": lambda: model(x, training=False)}, runs)["the Keras model"]


def keras_model_stats(model_path: str | Path, runs: int = 20) -> dict[str, Any]:
    """The same statistics dict as dspl.models.stats.model_stats, for a DeepSpectrumLite Keras file (which
    needs no configs here: the input shape is in the file; an unknown plot size counts as 224 x 224)."""
    model, config = load_keras(model_path)
    with native_quiet():
        return _statistics(model, config, model_path, runs)


def _statistics(model: Any, config: dict[str, Any], model_path: str | Path, runs: int) -> dict[str, Any]:
    height, width, channels = (size or 224 for size in model.input_shape[1:])
    shape = (1, height, width, channels)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    flops = _flops(model, shape)
    return {
        "model": str(model_path),
        "backbone": config["config"].get("name"),
        "input_shape": list(shape),
        "classes": [str(i) for i in range(int(model.output_shape[-1]))],
        "params_total": total,
        "params_trainable": trainable,
        "buffers": total - trainable,
        "flops": flops,
        "macs": flops // 2,
        "file_size_bytes": Path(model_path).stat().st_size,
        "latency": _forward_latency(model, np.zeros(shape, np.float32), runs),
        "layers": _layers(model),
    }
