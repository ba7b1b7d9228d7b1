"""`LoadedModel`: a model ready to score, with its configs and what callers may ask of it.

Whatever file it came from (dspl's model.h5 or checkpoint, or a plug-in's format such as DeepSpectrumLite's
Keras files, dspl.legacy), a loaded model scores plots with PyTorch modules: `features` makes the plots of raw
chunks, `model` scores them. Commands ask it, not its type, what it can do: whether PyTorch has its gradients
(explanations by gradient need them) and how it becomes a TensorFlow SavedModel (dspl's own models through
ONNX, see dspl.export; a model that is TensorFlow already brings its `SavedModelRoute`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from dspl.config import ClassConfig, RunConfig
from dspl.errors import DsplError
from dspl.features import PlotTransform
from dspl.models.classifier import create_model
from dspl.models.modelfile import ModelFile


@dataclass(frozen=True)
class SavedModelRoute:
    """How a model that is TensorFlow already becomes a SavedModel: ``write(item_shape, destination)`` writes one
    taking NHWC plots ``[1, *item_shape]`` on 0..255; ``reference`` names the framework export reports compare the
    SavedModel with; ``no_onnx`` says why the model has no ONNX export."""

    write: Callable[[tuple[int, ...], Path], Path]
    reference: str
    no_onnx: str


@dataclass
class LoadedModel:
    """A model in eval mode: ``features`` (raw chunks [B, N] -> plots [B, C, H, W]), ``model`` (plots -> scores),
    the configuration and classes it was trained with, ``source`` (the file it came from) and ``kind`` (what it is,
    for messages).

    ``gradients``: PyTorch can differentiate its scores. ``saved_model_route``: None for PyTorch models, which the
    exporter takes through ONNX.
    """

    model: nn.Module
    features: nn.Module
    config: RunConfig
    classes: ClassConfig
    source: str = ""
    kind: str = "a dspl model"
    gradients: bool = True
    saved_model_route: SavedModelRoute | None = None

    @property
    def categorical(self) -> bool:
        return self.config.categorical

    @property
    def reference(self) -> str:
        """The framework that computes the model's own scores."""
        return "pytorch" if self.saved_model_route is None else self.saved_model_route.reference


def restore_model(contents: ModelFile, source: str | Path) -> LoadedModel:
    """Rebuild the classifier a dspl model file describes (no config files or downloads needed), in eval mode."""
    config = contents.config
    damaged = [name for name, tensor in contents.state.items()
               if tensor.is_floating_point() and not bool(tensor.isfinite().all())]
    if damaged:
        raise DsplError(f"{source}: {len(damaged)} stored tensor(s) hold NaN or infinite values (first: "
                        f"'{damaged[0]}'): the model is damaged, expected finite weights; train it again")
    model = create_model(config.model, contents.classes.num_classes, in_chans=config.spec.input_channels,
                         pretrained=False)
    try:
        model.load_state_dict(contents.state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DsplError(f"{source}: the stored tensors do not fit the '{config.model.basemodel_name}' model: "
                        f"{first}") from None
    return LoadedModel(model.eval(), PlotTransform(config.spec).eval(), config, contents.classes, str(source))
