"""The Keras applications' input scaling DeepSpectrumLite applied to plots (0..255 RGB) before its models."""

from __future__ import annotations

from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # caffe mode: RGB -> BGR, then these means subtracted
# DeepSpectrumLite basemodel_name -> the mode of its Keras `preprocess_input`.
KERAS_SCALING: dict[str, str] = {
    "vgg16": "caffe", "vgg19": "caffe", "resnet50": "caffe", "squeezenet_v1": "caffe",
    "densenet121": "torch", "densenet169": "torch", "densenet201": "torch",
    "xception": "tf", "inception_v3": "tf", "inception_resnet_v2": "tf", "mobilenet": "tf",
    "mobilenet_v2": "tf", "nasnet_large": "tf", "nasnet_mobile": "tf",
}


def scaling_mode(basemodel_name: str, use_plot_images: bool) -> str:
    """caffe, torch or tf for plots of a known backbone; none for raw features (DeepSpectrumLite fed them as is)."""
    return KERAS_SCALING.get(basemodel_name, "none") if use_plot_images else "none"


def scale(x: Any, mode: str) -> Any:
    """Apply one scaling mode to NHWC float32 plots on 0..255 (a TensorFlow tensor)."""
    import tensorflow as tf

    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - tf.constant(IMAGENET_DEFAULT_MEAN, x.dtype)) / tf.constant(IMAGENET_DEFAULT_STD, x.dtype)
    if mode == "caffe":
        return tf.reverse(x, axis=[-1]) - tf.constant(CAFFE_BGR_MEAN, x.dtype)
    return x
