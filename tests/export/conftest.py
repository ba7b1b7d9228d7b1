"""Fixtures of the export tests: tiny preprocessors and image models made by TensorFlow directly."""

from __future__ import annotations

import numpy as np
import pytest


def _tflite(function, spec_shape, quantise: bool = False, optimise: str = "") -> bytes:
    """A TF function converted to TFLite: float32, full int8 (``quantise``, inputs on 0..255), or with
    ``optimise`` "dynamic" (int8 weights) or "fp16" (float16 weights)."""
    import tensorflow as tf

    concrete = tf.function(function, input_signature=[tf.TensorSpec(spec_shape, tf.float32)]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if optimise:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if optimise == "fp16":
            converter.target_spec.supported_types = [tf.float16]
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


@pytest.fixture(scope="module")
def normalisation():
    """timm's ImageNet input normalisation of plots."""
    from dspl.models import InputNormalisation

    return InputNormalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def normalising_models(normalisation) -> dict[str, bytes]:
    """'Image models' [1, 4, 4, 3] on 0..255 -> [1, 3] that start with a classifier's input normalisation
    (x/255 − mean)/std, in fp32, dynamic-range, fp16 and int8, and one whose graph starts with a convolution."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    dense = rng.standard_normal((64, 3)).astype(np.float32)
    mean, std = np.array(normalisation.mean, np.float32), np.array(normalisation.std, np.float32)

    def head(x):
        features = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        return tf.nn.softmax(tf.matmul(tf.reshape(features, [1, 64]), dense))

    def image(plot):
        return head((plot / 255.0 - mean) / std)

    shape = [1, 4, 4, 3]
    return {"fp32": _tflite(image, shape), "int8": _tflite(image, shape, quantise=True),
            "dynamic": _tflite(image, shape, optimise="dynamic"), "fp16": _tflite(image, shape, optimise="fp16"),
            "no chain": _tflite(head, shape)}
