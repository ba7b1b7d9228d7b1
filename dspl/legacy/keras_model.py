"""Running a DeepSpectrumLite Keras model with tf_keras: loaded in inference mode behind torch-facing modules.

The Keras model takes the plot after its backbone's Keras input scaling; ``KerasScorer`` takes plots as dspl's
models do (NCHW on 0..255), scales them and returns the Keras model's scores, so prediction, evaluation and
the export verification run it like a dspl model. ``TFPlots`` makes those plots with dspl's TensorFlow
reference, the way DeepSpectrumLite made them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dspl.config import ClassConfig, GivenConfigs, RunConfig
from dspl.data.example import example_hp
from dspl.errors import DsplError
from dspl.legacy import keras_file
from dspl.legacy.configs import legacy_configs
from dspl.legacy.keras_export import keras_saved_model
from dspl.legacy.keras_objects import custom_objects
from dspl.legacy.scaling import scale, scaling_mode
from dspl.models import LoadedModel, SavedModelRoute
from dspl.quiet import native_quiet
from dspl.spec import PreprocessingSpec, colour_table

log = logging.getLogger(__name__)


def load_keras(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The tf_keras model of a DeepSpectrumLite file (backbone in inference mode) and its original config.

    Warns once when the original ran its backbone with training=True (trained from scratch) and it has
    BatchNorm: DeepSpectrumLite's own scores then used each batch's statistics, dspl uses the moving ones.
    """
    import tf_keras

    config = keras_file.read_model_config(path)
    if keras_file.backbone_training_flag(config) and keras_file.has_batch_norm(config):
        log.warning("%s: trained from scratch, DeepSpectrumLite ran its BatchNorm on each batch's statistics; "
                    "dspl runs it in inference mode (moving statistics), so scores differ from the original's",
                    path)
    try:
        with native_quiet():
            model = tf_keras.models.model_from_config(keras_file.in_inference_mode(config),
                                                      custom_objects=custom_objects())
            model.load_weights(str(path))
    except (ValueError, TypeError, KeyError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DsplError(f"{path}: tf_keras cannot rebuild this DeepSpectrumLite model: {first}") from None
    return model, config


class KerasScorer(nn.Module):
    """Plots [B, C, H, W] on 0..255 (torch) -> the Keras model's scores [B, K] (torch), scaling included."""

    def __init__(self, keras_model: Any, mode: str) -> None:
        super().__init__()
        self.keras_model = keras_model
        self.mode = mode

    def tf_scores(self, plots_nhwc: Any) -> Any:
        """The scores of NHWC plots on 0..255 as a TensorFlow tensor (traceable, for SavedModels)."""
        return self.keras_model(scale(plots_nhwc, self.mode), training=False)

    def forward(self, plots: torch.Tensor) -> torch.Tensor:
        """Scores of NCHW plots, computed by TensorFlow."""
        nhwc = np.ascontiguousarray(plots.detach().cpu().numpy().transpose(0, 2, 3, 1), dtype=np.float32)
        with native_quiet():
            scores = np.array(self.tf_scores(nhwc))
        return torch.from_numpy(scores)


class TFPlots(nn.Module):
    """Raw chunks [B, N] (torch) -> model inputs [B, C, H, W] made by dspl's TensorFlow reference pipeline."""

    def __init__(self, spec: PreprocessingSpec) -> None:
        from dspl.export.tf_reference import TFPlotPipeline  # TensorFlow loads only when a Keras model is run

        super().__init__()
        # spec and colormap as dspl's PlotTransform has them, for readers such as the explanations
        self.spec = spec
        if self.spec.use_plot_images:
            self.register_buffer("colormap", torch.from_numpy(colour_table(self.spec.color_map) * 255.0).float(),
                                 persistent=False)
        self.pipeline = TFPlotPipeline(self.spec)

    def forward(self, chunks: torch.Tensor) -> torch.Tensor:
        """Plots (or raw features) of a batch of chunks, channels first."""
        with native_quiet():
            out = np.asarray(self.pipeline(chunks.detach().cpu().numpy().astype(np.float32)))
        return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))


NO_ONNX = ("a DeepSpectrumLite Keras model goes to TensorFlow formats only; for ONNX port it first with "
           "`dspl import-keras`")


def load_legacy_image_model(path: str | Path) -> LoadedModel:
    """A DeepSpectrumLite Keras model without its configs, as the image model its file describes whole (what its
    `convert` needed): the plot size, the outputs, the head's activations and, named by the model, its Keras input
    scaling come from the file. What the file does not hold is assumed and said: its plots are made as dspl's
    example configuration makes them (they only verify the conversion) and its classes are named by index."""
    keras_config = keras_file.read_model_config(path)
    model, _ = load_keras(path)
    name = str(keras_config.get("config", {}).get("name"))
    height, width, channels = model.input_shape[1:]
    if channels != 3:
        raise DsplError(f"{path}: a model of raw features ({channels} channel) needs the configs it was trained "
                        "with: pass -hc and -cc")
    outputs = int(model.output_shape[-1])
    activation, output_activation = keras_file.head_activations(keras_config)
    config = RunConfig.from_dict({**example_hp(), "basemodel_name": name, "image_height": height or 224,
                                  "image_width": width or 224, "activation": activation,
                                  "output_activation": output_activation,
                                  "prediction_type": "regression" if outputs == 1 else "categorical"},
                                 f"{path} (assumed configuration)")
    classes = ClassConfig.from_dict({str(index): f"class {index}" for index in range(outputs)})
    log.warning("%s: no -hc/-cc: the Keras file gives the %dx%d plot input, %d output(s) and %s's '%s' input "
                "scaling; assumed: plots of dspl's example preprocessing to verify the conversion, and classes "
                "named 0..%d in the metadata (pass -hc and -cc for the model's own)", path, config.spec.image_height,
                config.spec.image_width, outputs, name, scaling_mode(name, True), outputs - 1)
    return _loaded(path, model, config, classes)


def _loaded(path: str | Path, model: Any, config: RunConfig, classes: ClassConfig) -> LoadedModel:
    """The LoadedModel of a Keras model and its (given or assumed) configs."""
    scorer = KerasScorer(model, scaling_mode(config.model.basemodel_name, config.spec.use_plot_images)).eval()
    route = SavedModelRoute(lambda shape, destination: keras_saved_model(model, scorer.mode, shape, destination),
                            "keras", NO_ONNX)
    return LoadedModel(scorer, TFPlots(config.spec), config, classes, str(path),
                       kind="a DeepSpectrumLite Keras model (run by TensorFlow)", gradients=False,
                       saved_model_route=route)


def load_legacy_model(path: str | Path, given: GivenConfigs) -> LoadedModel:
    """A DeepSpectrumLite Keras model as a LoadedModel: KerasScorer (no gradients for PyTorch), the configs from
    -hc/-cc, TFPlots, and its own way to a SavedModel."""
    keras_file.read_model_config(path)  # a file that is no DeepSpectrumLite model is named before configs
    config, classes = legacy_configs(path, given)
    model, keras_config = load_keras(path)
    check_fits(path, model, keras_config, config, classes.num_classes)
    return _loaded(path, model, config, classes)


def check_fits(path: str | Path, model: Any, keras_config: dict[str, Any], config: RunConfig,
               num_classes: int) -> None:
    """DsplError unless the configs describe this model: backbone name, number of outputs, plot size."""
    name = keras_config.get("config", {}).get("name")
    basemodel, spec = config.model.basemodel_name, config.spec
    problems = []
    if name != basemodel:
        problems.append(f"basemodel_name is {basemodel!r} but the model is a {name!r}")
    outputs = int(model.output_shape[-1])
    if outputs != num_classes:
        problems.append(f"the class config has {num_classes} classes but the model {outputs} outputs")
    if spec.use_plot_images:
        expected = {spec.image_height, spec.image_width}
        shape = model.input_shape[1:3]
        if None not in shape and set(shape) != expected:
            problems.append(f"image_height x image_width is {spec.image_height}x{spec.image_width} but the "
                            f"model takes {shape[0]}x{shape[1]}")
    if problems:
        raise DsplError(f"{path}: the given configs do not fit this DeepSpectrumLite model: {'; '.join(problems)}")
