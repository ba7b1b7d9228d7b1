"""A DeepSpectrumLite Keras model as a TensorFlow SavedModel: plot [1, H, W, C] on 0..255 -> scores.

The export path of dspl models goes PyTorch -> ONNX -> SavedModel; a Keras model is TensorFlow already, so
it enters that path at the SavedModel (its `SavedModelRoute`), with its input scaling inside and the same serving
signature as onnx2tf writes, and from there is converted to TFLite (built-in operators only) and verified as
dspl's are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dspl.export.tf_convert import SIGNATURE
from dspl.legacy.scaling import scale
from dspl.quiet import native_quiet

INPUT_NAME = "plot"


def keras_saved_model(keras_model: Any, mode: str, item_shape: tuple[int, ...], destination: str | Path) -> Path:
    """Write the Keras input scaling ``mode`` and the Keras model (inference mode) as a SavedModel taking one NHWC
    item."""
    import tensorflow as tf

    module = tf.Module(name="dspl_keras_legacy")
    module.keras_model = keras_model  # tracked, so its variables are saved

    @tf.function(input_signature=[tf.TensorSpec([1, *item_shape], tf.float32, name=INPUT_NAME)])
    def serve(plot: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": keras_model(scale(plot, mode), training=False)}

    module.serve = serve
    with native_quiet():
        tf.saved_model.save(module, str(destination), signatures={SIGNATURE: serve})
    return Path(destination)
