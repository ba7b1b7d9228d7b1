"""ONNX -> TensorFlow SavedModel with onnx2tf, offline, and SavedModel inference for verification.

onnx2tf turns the NCHW ONNX input into an NHWC TensorFlow input, so the SavedModel (and every TFLite model
made from it) takes plots [1, H, W, 3] on 0..255 exactly as `dspl plot --format npy` writes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from dspl.errors import DsplError
from dspl.files import work_dir
from dspl.quiet import native_quiet

log = logging.getLogger(__name__)

# onnx2tf loads this file from the working directory and downloads it when it is missing.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_SAMPLE_SHAPE = (20, 128, 128, 3)
SIGNATURE = "serving_default"


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Run a block inside path and return to the previous working directory afterwards."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def write_onnx2tf_samples(directory: Path, plots_nhwc: np.ndarray | None) -> Path:
    """Write onnx2tf's sample-image file (20 x 128 x 128 x 3 on 0..1) from real plots so it never downloads it.

    onnx2tf uses these images for its shape inference when the input is an RGB image; non-RGB inputs get a
    seeded uniform sample instead.
    """
    count, height, width, channels = ONNX2TF_SAMPLE_SHAPE
    if plots_nhwc is not None and plots_nhwc.ndim == 4 and plots_nhwc.shape[-1] == channels and len(plots_nhwc):
        rows = np.linspace(0, plots_nhwc.shape[1] - 1, height).round().astype(int)
        cols = np.linspace(0, plots_nhwc.shape[2] - 1, width).round().astype(int)
        images = plots_nhwc[np.arange(count) % len(plots_nhwc)][:, rows][:, :, cols] / 255.0
    else:
        images = np.random.default_rng(0).uniform(0.0, 1.0, ONNX2TF_SAMPLE_SHAPE)
    path = directory / ONNX2TF_SAMPLE_FILE
    np.save(path, np.clip(images, 0.0, 1.0).astype(np.float32))
    return path


def onnx_to_saved_model(onnx_path: str | Path, destination: str | Path,
                        sample_plots_nhwc: np.ndarray | None = None) -> Path:
    """Convert an ONNX model to a SavedModel directory with onnx2tf, without any network access.

    onnx2tf runs in a temporary working directory that holds its sample-image file; its own TFLite outputs
    are discarded (dspl converts the SavedModel itself with built-in operators only). The ONNX model comes
    simplified from export_onnx, so onnx2tf's own onnxsim pass (a subprocess) is off.
    """
    import onnx2tf

    onnx_path, destination = Path(onnx_path).resolve(), Path(destination)
    verbosity = "info" if log.isEnabledFor(logging.DEBUG) else "error"
    with work_dir("onnx2tf") as work:
        write_onnx2tf_samples(work, sample_plots_nhwc)
        with _working_directory(work), native_quiet():
            try:
                onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path="saved_model",
                                check_onnx_tf_outputs_sample_data_normalization="denorm", not_use_onnxsim=True,
                                verbosity=verbosity)
            except SystemExit as exc:  # onnx2tf reports some failures with sys.exit
                raise DsplError(f"{onnx_path}: onnx2tf could not convert the model (exit status {exc.code})") from None
            except Exception as exc:  # onnx2tf has printed its trace log; keep one line here
                first = (str(exc).strip().splitlines() or [""])[0]
                raise DsplError(f"{onnx_path}: onnx2tf could not convert the model: {type(exc).__name__}: "
                                f"{first}") from exc
        if not (work / "saved_model" / "saved_model.pb").is_file():
            raise DsplError(f"{onnx_path}: onnx2tf wrote no SavedModel")
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(work / "saved_model", destination, ignore=shutil.ignore_patterns("*.tflite"))
    log.info("wrote SavedModel %s", destination)
    return destination


def saved_model_predict(path: str | Path, inputs_nhwc: np.ndarray) -> np.ndarray:
    """Run a SavedModel's serving signature item by item (batch axis 1)."""
    import tensorflow as tf

    with native_quiet():
        function = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        (name,) = function.structured_input_signature[1]
        outputs = [next(iter(function(**{name: tf.constant(item[None], tf.float32)}).values())).numpy()
                   for item in inputs_nhwc]
    return np.concatenate(outputs)
