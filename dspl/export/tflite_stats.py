"""Statistics of a .tflite model: tensors, parameters, size, operator histogram, latency, weights file.

Like DeepSpectrumLite's `tflite-stats`, it writes `converted_model_weights_infos.hdf5` beside the model:
one dataset per constant tensor (its stored values), with the tensor's name, index and quantisation.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dspl.errors import DsplError
from dspl.export.metadata import associated_files
from dspl.export.tflite_convert import make_interpreter
from dspl.export.tflite_file import checked_model, constant_tensors, tflite_operators
from dspl.files import atomic_path
from dspl.latency import WARMUP_RUNS, time_calls
from dspl.threads import timing_threads

log = logging.getLogger(__name__)

WEIGHTS_FILE = "converted_model_weights_infos.hdf5"


def measure_latency(model: str | Path, runs: int = 50, threads: int | None = None,
                    warmup: int = WARMUP_RUNS, runtime: str = "litert") -> dict[str, Any]:
    """Invoke latency on seeded noise inputs, summarised as dspl.latency does (median/p90/mean/min in ms).

    runtime "litert" uses ai_edge_litert's interpreter; "tensorflow" uses tf.lite.Interpreter, which also
    runs Flex (SELECT_TF_OPS) models. Both apply the XNNPACK delegate by default.
    """
    return measure_latencies({Path(model).name: model}, runs, threads, warmup, runtime)[Path(model).name]


def measure_latencies(models: dict[str, str | Path], runs: int = 50, threads: int | None = None,
                      warmup: int = WARMUP_RUNS, runtime: str = "litert") -> dict[str, dict[str, Any]]:
    """measure_latency for several models, interleaved invoke by invoke (for side-by-side ratios); ``threads``
    defaults to the CPUs free now under dspl's thread policy (dspl.threads.timing_threads)."""
    threads = timing_threads() if threads is None else threads
    interpreters = {name: _ready_interpreter(path, threads, runtime) for name, path in models.items()}
    timings = time_calls({name: interpreter.invoke for name, interpreter in interpreters.items()}, runs, warmup)
    return {name: {**timing, "threads": threads, "runtime": runtime} for name, timing in timings.items()}


def _ready_interpreter(model: str | Path, threads: int, runtime: str):
    """An interpreter with tensors allocated and its inputs set to seeded noise (zeros would make a peak-normalising
    preprocessor, such as DeepSpectrumLite's, divide by zero)."""
    if runtime == "tensorflow":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_content=checked_model(model), num_threads=threads)
    elif runtime == "litert":
        interpreter = make_interpreter(model, threads)
    else:
        raise DsplError(f"runtime: value '{runtime}': expected litert or tensorflow")
    interpreter.allocate_tensors()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            values = rng.uniform(-0.5, 0.5, detail["shape"])
        else:
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, detail["shape"], endpoint=True)
        interpreter.set_tensor(detail["index"], values.astype(dtype))
    return interpreter


def tflite_stats(model_path: str | Path, runs: int = 50, threads: int | None = None,
                 write_weights: bool = True) -> dict[str, Any]:
    """Tensor details, parameter count, file size, operator histogram, latency (and the weights HDF5 file)."""
    path = Path(model_path)
    data = checked_model(path)
    operators = tflite_operators(data)
    constants = constant_tensors(data)
    interpreter = make_interpreter(data, threads, name=str(path))  # checked above: not parsed again
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
