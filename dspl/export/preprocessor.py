"""The TFLite preprocessor: raw chunk [1, N] -> plot [1, H, W, 3] on 0..255 (or normalised, for end-to-end models)."""

from __future__ import annotations

import logging
from pathlib import Path

from dspl.export.tflite_convert import checked_convert
from dspl.files import write_atomically
from dspl.models.classifier import InputNormalisation
from dspl.spec import PreprocessingSpec

log = logging.getLogger(__name__)


def create_preprocessor(spec: PreprocessingSpec, destination: str | Path, num_samples: int | None = None,
                        normalisation: InputNormalisation | None = None) -> Path:
    """Convert the TFLite-compatible TF pipeline for one [1, N] float32 chunk and write it atomically.

    ``num_samples`` fixes N for whole-file configurations (chunk_size <= 0, see PreprocessingSpec.input_samples);
    without it their preprocessor takes any length (the client resizes the input tensor), which needs a resize
    with a built-in TFLite kernel. ``normalisation``: plots as that backbone normalisation makes them (for
    end-to-end models), not on 0..255.
    """
    import tensorflow as tf

    from dspl.export.tf_reference import TFPlotPipeline

    destination = Path(destination)
    pipeline = TFPlotPipeline(spec, tflite_compatible=True, num_samples=num_samples, normalisation=normalisation)
    function = pipeline.concrete_function(batch_size=1)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], pipeline)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = False
    model = checked_convert(converter, f"{destination}: the preprocessor")
    write_atomically(destination, model)
    log.info("wrote %s: [1, %s] -> %s, %d bytes", destination, pipeline.num_samples or "any",
             (1, *pipeline.output_shape), len(model))
    return destination
