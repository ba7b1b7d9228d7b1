"""Statistics of a .tflite model: tensors, parameters, size, operator histogram, latency, weights file.

Like DeepSpectrumLite's `tflite-stats`, it writes `converted_model_weights_infos.hdf5` beside the model:
one dataset per constant tensor (its stored values), with the tensor's name, index and quantisation.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dspl.errors import DsplError
from dspl.files import atomic_path

log = logging.getLogger(__name__)

WEIGHTS_FILE = "converted_model_weights_infos.hdf5"
WARMUP_RUNS = 5
def measure_latency(model: str | Path, runs: int = 50, threads: int | None = None,
                    warmup: int = WARMUP_RUNS, runtime: str = "litert") -> dict[str, float]:
    """Invoke latency in milliseconds on zero inputs: warm-up runs, then median/p90/mean/min of `runs`.

    runtime "litert" uses ai_edge_litert's interpreter; "tensorflow" uses tf.lite.Interpreter, which also
    runs Flex (SELECT_TF_OPS) models. Both apply the XNNPACK delegate by default.
    """
    return measure_latencies({"model": model}, runs, threads, warmup, runtime)["model"]


def measure_latencies(models: dict[str, str | Path], runs: int = 50, threads: int | None = None,
                      warmup: int = WARMUP_RUNS, runtime: str = "litert") -> dict[str, dict[str, float]]:
    """measure_latency for several models, interleaved invoke by invoke so that load on a shared machine
    affects them alike (for side-by-side ratios)."""
    if runs < 1:
        raise DsplError(f"--runs: value {runs}: expected a number >= 1")
    interpreters = {name: _ready_interpreter(path, threads, runtime) for name, path in models.items()}
    for interpreter in interpreters.values():
        for _ in range(warmup):
            interpreter.invoke()
    times = {name: np.empty(runs) for name in models}
    for i in range(runs):
        for name, interpreter in interpreters.items():
            start = time.perf_counter()
            interpreter.invoke()
            times[name][i] = (time.perf_counter() - start) * 1000.0
    return {name: {"median_ms": float(np.median(t)), "p90_ms": float(np.percentile(t, 90)),
                   "mean_ms": float(t.mean()), "min_ms": float(t.min()), "runs": runs, "warmup": warmup,
                   "threads": threads if threads is not None else -1, "runtime": runtime}
            for name, t in times.items()}


def _ready_interpreter(model: str | Path, threads: int | None, runtime: str):
    """An interpreter with tensors allocated and zero inputs set."""
    from dspl.export.tflite_convert import make_interpreter

    if runtime == "tensorflow":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(model), num_threads=threads)
    elif runtime == "litert":
        interpreter = make_interpreter(model, threads)
    else:
        raise DsplError(f"runtime: value '{runtime}': expected litert or tensorflow")
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return interpreter


def tflite_stats(model_path: str | Path, runs: int = 50, threads: int | None = None,
                 write_weights: bool = True) -> dict[str, Any]:
    """Tensor details, parameter count, file size, operator histogram, latency (and the weights HDF5 file)."""
    from dspl.export.metadata import associated_files
    from dspl.export.tflite_file import constant_tensors, tflite_operators
    from dspl.export.tflite_convert import make_interpreter

    path = Path(model_path)
    if not path.is_file():
        raise DsplError(f"{path}: TFLite model file not found")
    data = path.read_bytes()
    operators = tflite_operators(data)  # also rejects files that are not TFLite models
    constants = constant_tensors(data)
    interpreter = make_interpreter(data, threads)
    interpreter.allocate_tensors()
    stats: dict[str, Any] = {
        "model": str(path),
        "file_size_bytes": len(data),
        "parameters": int(sum(c["size"] for c in constants)),
        "constant_tensors": len(constants),
        "inputs": [_io(d) for d in interpreter.get_input_details()],
        "outputs": [_io(d) for d in interpreter.get_output_details()],
        "tensors": [{"index": int(d["index"]), "name": d["name"], "shape": [int(s) for s in d["shape"]],
                     "dtype": np.dtype(d["dtype"]).name} for d in interpreter.get_tensor_details()],
        "operators": len(operators),
        "operator_histogram": dict(Counter(operators).most_common()),
        "associated_files": sorted(associated_files(data)),
        "latency": measure_latency(path, runs, threads),
    }
    if write_weights:
        stats["weights_file"] = str(write_weights_file(constants, path.parent / WEIGHTS_FILE))
    return stats


def _io(detail: dict) -> dict[str, Any]:
    scale, zero_point = detail["quantization"]
    return {"name": detail["name"], "shape": [int(s) for s in detail["shape"]],
            "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}


def write_weights_file(constants: list[dict[str, Any]], path: Path) -> Path:
    """One HDF5 dataset per constant tensor ('<subgraph>_<index>_<name>', '/' -> '|'), written atomically."""
    with atomic_path(path) as temporary:
        _write_weights(constants, temporary)
    return path


def _write_weights(constants: list[dict[str, Any]], path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as file:
        for constant in constants:
            key = f"{constant['subgraph']}_{constant['index']}_{constant['name']}".replace("/", "|")
            dataset = file.create_dataset(key, data=constant["values"])
            dataset.attrs["name"] = constant["name"]
            dataset.attrs["index"] = constant["index"]
            dataset.attrs["type"] = constant["type"]
            dataset.attrs["scale"] = np.asarray(constant["scale"], np.float64)
            dataset.attrs["zero_point"] = np.asarray(constant["zero_point"], np.int64)
