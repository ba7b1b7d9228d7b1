"""dspl's definitions of the two custom names in DeepSpectrumLite's Keras files: `AugmentableModel` and `ARelu`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable

from dspl.models.activations import ARELU_ALPHA, ARELU_BETA


def arelu(x: Any) -> Any:
    """DeepSpectrumLite's ARelu as a TensorFlow function: (1 + σ(β))·relu(x) − clip(α, 0.01, 0.99)·relu(−x)."""
    import tensorflow as tf

    alpha = min(max(ARELU_ALPHA, 0.01), 0.99)
    gain = 1.0 + tf.math.sigmoid(tf.constant(ARELU_BETA, x.dtype))
    return tf.nn.relu(x) * gain - tf.nn.relu(-x) * alpha


@lru_cache(maxsize=1)
def custom_objects() -> dict[str, Callable[..., Any]]:
    """The names a DeepSpectrumLite model file refers to, for tf_keras' deserialisation."""
    import tf_keras

    class AugmentableModel(tf_keras.Model):
        """A Keras Model holding DeepSpectrumLite's functional graph (its training-time augmentation is not
        needed to run it)."""

    return {"AugmentableModel": AugmentableModel, "ARelu": arelu}
