"""`stats` of a DeepSpectrumLite Keras model: parameters, FLOPs (TensorFlow's profiler), layers, CPU latency.

The latency is that of the model compiled as a graph (a tf.function), as a deployed model runs: called eagerly, a
Keras model pays Python dispatch for each layer (squeezenet_v1 at 32x32: 40 ms eagerly, 1.9 ms as a graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dspl.latency import time_calls
from dspl.legacy.keras_model import load_keras
from dspl.quiet import native_quiet
from dspl.threads import set_by_user, timing_threads


def _flops(model: Any, shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass (a multiply-add counts 2), from TensorFlow's profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    function = _graph(model).get_concrete_function(tf.TensorSpec(shape, tf.float32))
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


def _graph(model: Any) -> Any:
    """The model's inference pass (training=False) as a TensorFlow graph function."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False), autograph=False)


def _forward_latency(model: Any, x: np.ndarray, runs: int, threads: int | None) -> dict[str, Any]:
    """Latency of one forward pass of the compiled model on the CPU (traced in the warm-up runs), summarised as
    dspl.latency does, with TensorFlow's thread count where dspl set it."""
    forward = _graph(model)
    latency = time_calls({"the Keras model": lambda: forward(x)}, runs)["the Keras model"]
    return latency if threads is None else {**latency, "threads": threads}


def _timing_threads() -> int | None:
    """TensorFlow's intra-op threads for the latency figure, set before its runtime starts (loading the file
    starts it): as for a dspl model, the CPUs other processes leave free now (dspl.threads.timing_threads), unless
    the user gave TensorFlow a count. None where that count is theirs or the runtime had started already."""
    import tensorflow as tf

    if set_by_user("TF_NUM_INTRAOP_THREADS"):
        return None
    count = timing_threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(count)
    except RuntimeError:  # the runtime runs already, on the count it started with
        return None
    return count


def keras_model_stats(model_path: str | Path, runs: int = 20) -> dict[str, Any]:
    """The same statistics dict as dspl.models.stats.model_stats, for a DeepSpectrumLite Keras file (which
    needs no configs here: the input shape is in the file; an unknown plot size counts as 224 x 224)."""
    threads = _timing_threads()
    model, config = load_keras(model_path)
    with native_quiet():
        return _statistics(model, config, model_path, runs, threads)


def _statistics(model: Any, config: dict[str, Any], model_path: str | Path, runs: int,
                threads: int | None) -> dict[str, Any]:
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
        "latency": _forward_latency(model, np.zeros(shape, np.float32), runs, threads),
        "layers": _layers(model),
    }
