"""`dspl import-keras`: a DeepSpectrumLite Keras model's weights ported into a dspl model file.

The backbone becomes the Keras-exact `keras_<name>` (dspl.legacy.backbones) and the head dspl's head with the
same activations; weights are copied layer by layer in the Keras graph's order (convolutions, depthwise
convolutions, BatchNorm statistics with their epsilons, dense layers). The result is checked against the
Keras model on plots before it is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dspl.config import GivenConfigs, RunConfig
from dspl.errors import DsplError
from dspl.export.calibration import synthetic_chunks
from dspl.legacy.backbones import BUILDERS, KERAS_NAME_MAPS, PREFIX
from dspl.legacy.keras_file import head_activations, read_model_config
from dspl.legacy.keras_model import KerasScorer, TFPlots, load_legacy_model
from dspl.files import regular_file
from dspl.legacy.scaling import KERAS_SCALING
from dspl.models import create_model
from dspl.models.modelfile import is_model_file, save_model_file

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # max |Δ score| between the Keras model and its port
WEIGHTED_KERAS_LAYERS = ("Conv2D", "DepthwiseConv2D", "BatchNormalization")


def _keras_layers(model: Any) -> list[Any]:
    """The backbone's layers with weights, in the order of the Keras graph (nested models expanded)."""
    layers = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            layers.extend(_keras_layers(layer))
        elif type(layer).__name__ in WEIGHTED_KERAS_LAYERS:
            layers.append(layer)
    return layers


def _torch_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]


def _copy(target: torch.Tensor, value: np.ndarray, what: str) -> None:
    value_t = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if tuple(value_t.shape) != tuple(target.shape):
        raise DsplError(f"import-keras: {what}: Keras shape {tuple(value_t.shape)} does not fit {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(value_t)


def _port_layer(keras_layer: Any, layer: nn.Module) -> None:
    """Copy one Keras layer's weights into the matching torch layer (kernels transposed to OIHW)."""
    kind, name, weights = type(keras_layer).__name__, keras_layer.name, keras_layer.get_weights()
    if kind == "BatchNormalization":
        if not isinstance(layer, nn.BatchNorm2d):
            raise DsplError(f"import-keras: Keras layer {name} ({kind}) meets a {type(layer).__name__}")
        config = keras_layer.get_config()
        values = iter(weights)
        gamma = next(values) if config["scale"] else np.ones(layer.num_features)
        beta = next(values) if config["center"] else np.zeros(layer.num_features)
        for target, value in zip((layer.weight, layer.bias, layer.running_mean, layer.running_var),
                                 (gamma, beta, next(values), next(values))):
            _copy(target, value, name)
        if abs(layer.eps - config["epsilon"]) > 1e-12:
            raise DsplError(f"import-keras: {name}: BatchNorm epsilon {config['epsilon']} but the port uses "
                            f"{layer.eps}")
        return
    if not isinstance(layer, nn.Conv2d):
        raise DsplError(f"import-keras: Keras layer {name} ({kind}) meets a {type(layer).__name__}")
    kernel = weights[0]
    if kind == "DepthwiseConv2D":  # [kh, kw, in, multiplier] -> [in * multiplier, 1, kh, kw]
        kh, kw, channels, multiplier = kernel.shape
        kernel = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
    else:  # [kh, kw, in, out] -> [out, in, kh, kw]
        kernel = kernel.transpose(3, 2, 0, 1)
    _copy(layer.weight, kernel, name)
    if len(weights) > 1:
        if layer.bias is None:
            raise DsplError(f"import-keras: {name} has a bias the port lacks")
        _copy(layer.bias, weights[1], name)


def _port_dense(keras_layer: Any, layer: nn.Linear) -> None:
    kernel, bias = keras_layer.get_weights()
    _copy(layer.weight, kernel.T, keras_layer.name)
    _copy(layer.bias, bias, keras_layer.name)


def _pairs(keras_layers: list[Any], backbone: nn.Module, dsl_name: str) -> list[tuple[Any, nn.Module]]:
    """Keras layers with their torch modules: by name where the orders differ, else in order."""
    torch_layers = _torch_layers(backbone)
    if len(keras_layers) != len(torch_layers):
        raise DsplError(f"import-keras: the Keras backbone has {len(keras_layers)} weighted layers, the port "
                        f"{len(torch_layers)}")
    if dsl_name not in KERAS_NAME_MAPS:
        return list(zip(keras_layers, torch_layers))
    modules = dict(backbone.named_modules())
    names = [KERAS_NAME_MAPS[dsl_name](layer.name) for layer in keras_layers]
    unknown = [layer.name for layer, name in zip(keras_layers, names) if name not in modules]
    if unknown:
        raise DsplError(f"import-keras: Keras layers without a counterpart in the port: {', '.join(unknown[:5])}")
    return [(layer, modules[name]) for layer, name in zip(keras_layers, names)]


def port_weights(keras_model: Any, model: nn.Module, dsl_name: str) -> None:
    """Copy every backbone and head weight of the Keras model into the dspl SpectrumClassifier."""
    keras_layers = _keras_layers(keras_model)
    pairs = _pairs(keras_layers, model.backbone, dsl_name)
    for keras_layer, layer in pairs:
        _port_layer(keras_layer, layer)
    if KERAS_SCALING[dsl_name] == "caffe":  # the Keras model's first convolution took BGR; the port's takes RGB
        first = _torch_layers(model.backbone)[0]
        with torch.no_grad():
            first.weight.copy_(first.weight.flip(1))
    dense = [layer for layer in keras_model.layers if type(layer).__name__ == "Dense"]
    _port_dense(dense[0], model.head.dense)
    _port_dense(dense[1], model.head.output)


def _check_supported(name: str) -> str:
    """The name of the Keras-exact port of a DeepSpectrumLite backbone (`keras_<name>`), or a DsplError."""
    if name not in BUILDERS:
        raise DsplError(f"basemodel_name: {name!r} cannot be ported exactly into PyTorch; import-keras ports "
                        f"{', '.join(BUILDERS)}")
    return PREFIX + name


def _check_scores(scorer: KerasScorer, model: nn.Module, config: RunConfig, source: Path) -> float:
    """max |Δ score| of the port against the Keras model on plots of seeded tones; DsplError above TOLERANCE."""
    features = TFPlots(config.spec)
    plots = torch.cat([features(chunk.reshape(1, -1)) for chunk in synthetic_chunks(config.spec)])
    with torch.no_grad():
        difference = float((scorer(plots) - model(plots)).abs().max())
    log.info("import-keras: max |Δ score| against the Keras model %.3g on %d plots", difference, len(plots))
    if not difference <= TOLERANCE:
        raise DsplError(f"{source}: the ported model's scores differ from the Keras model's by {difference:.3g} "
                        f"(tolerance {TOLERANCE:g}); not written")
    return difference


def import_keras(source: str | Path, given: GivenConfigs, destination: str | Path) -> tuple[Path, float]:
    """Port a DeepSpectrumLite model (its configs ``given`` with -hc/-cc) into a dspl model file; the written path
    and the max |Δ score| checked."""
    source = Path(source)
    if source.suffix == ".ckpt" or is_model_file(regular_file(source, "model file")):
        raise DsplError(f"{source}: a dspl model file already: predict, export and train's `weights:` take it as it "
                        "is; import-keras ports DeepSpectrumLite's Keras models")
    loaded = load_legacy_model(source, given)
    keras_name = _check_supported(loaded.config.model.basemodel_name)
    activation, output_activation = head_activations(read_model_config(source))
    config = loaded.config.replace(basemodel_name=keras_name, weights="", activation=activation,
                                   output_activation=output_activation)
    model = create_model(config.model, loaded.classes.num_classes, in_chans=config.spec.input_channels,
                         pretrained=False).eval()
    port_weights(loaded.model.keras_model, model, loaded.config.model.basemodel_name)
    difference = _check_scores(loaded.model, model, config, source)
    return save_model_file(destination, model, config, loaded.classes), difference
