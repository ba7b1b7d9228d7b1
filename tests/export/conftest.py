"""Fixtures of the export tests: a tiny float preprocessor and an int8 image model made by TensorFlow directly."""

from __future__ import annotations

import numpy as np
import pytest


def _tflite(function, spec_shape, quantise: bool = False) -> bytes:
    import tensorflow as tf

    concrete = tf.function(function, input_signature=[tf.TensorSpec(spec_shape, tf.float32)]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantise:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 255, spec_shape).astype(np.float32)]
                                                    for _ in range(16))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


@pytest.fixture(scope="module")
def parts() -> dict[str, bytes]:
    """A float 'preprocessor' [1, 16] -> [1, 2, 2, 3] on 0..255 and an int8 'image model' [1, 2, 2, 3] -> [1, 3]."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    mix = rng.standard_normal((16, 12)).astype(np.float32)
    dense = rng.standard_normal((12, 3)).astype(np.float32)

    def preprocessor(audio):
        return tf.reshape(tf.sigmoid(tf.matmul(audio, mix)) * 255.0, [1, 2, 2, 3])

    def image(plot):
        return tf.nn.softmax(tf.matmul(tf.reshape(plot, [1, 12]) / 255.0 - 0.5, dense))

    return {"pre": _tflite(preprocessor, [1, 16]), "image": _tflite(image, [1, 2, 2, 3], quantise=True),
            "image_fp32": _tflite(image, [1, 2, 2, 3])}
