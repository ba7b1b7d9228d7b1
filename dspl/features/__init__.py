"""Spectrogram plots in torch with tf.signal/tf.image semantics: functional ops, colour maps, resize, modules."""

from dspl.features.transforms import FeatureTransform, PlotTransform

__all__ = ["FeatureTransform", "PlotTransform"]
