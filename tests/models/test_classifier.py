"""SpectrumClassifier (dspl.models.classifier): normalisation, head, output activations, unknown activation
names, ONNX export."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from dspl.config import ModelSettings
from dspl.errors import DsplError
from dspl.models import SpectrumClassifier, create_model
from dspl.models.activations import ARelu


def _model(num_outputs: int, use_plot_images: bool = True, **overrides) -> SpectrumClassifier:
    """A random-weight classifier of these model settings, for plots (3 channels) or raw features (1)."""
    settings = ModelSettings(**{"basemodel_name": "test_efficientnet", "weights": "", "num_units": 8,
                                "activation": "relu", "dropout": 0.25, **overrides})
    return create_model(settings, num_outputs, in_chans=3 if use_plot_images else 1)


def test_categorical_scores_are_softmax_of_logits():
    torch.manual_seed(0)
    model = _model(4).eval()
    x = torch.rand(3, 3, 32, 32) * 255
    scores, logits = model(x), model.logits(x)
    assert isinstance(model, SpectrumClassifier)
    assert scores.shape == (3, 4)
    assert torch.allclose(scores.sum(1), torch.ones(3), atol=1e-6)
    assert torch.allclose(scores, torch.softmax(logits, -1), atol=1e-6)


@pytest.mark.parametrize("backbone", ["mobilenetv3_small_050", "test_efficientnet", "squeezenet1_1"])
def test_head_fits_the_width_of_the_pooled_features(backbone):
    """MobileNetV3 pools to head_hidden_size (1024), not num_features (288): the dense layer must fit it."""
    model = _model(3, basemodel_name=backbone).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64) * 255).shape == (2, 3)


def test_regression_output_is_linear():
    model = _model(1, prediction_type="regression").eval()
    x = torch.rand(2, 3, 32, 32) * 255
    assert model(x).shape == (2, 1)
    assert torch.equal(model(x), model.logits(x))


def test_output_activation_override():
    model = _model(3, output_activation="sigmoid").eval()
    x = torch.rand(2, 3, 32, 32) * 255
    assert torch.allclose(model(x), torch.sigmoid(model.logits(x)))


def test_image_input_normalised_with_backbone_statistics():
    model = _model(2).eval()
    x = torch.rand(1, 3, 32, 32) * 255
    mean = torch.tensor(model.backbone.pretrained_cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(model.backbone.pretrained_cfg["std"]).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(x), (x / 255 - mean) / std, atol=1e-5)
    assert model.input_channels == 3


def test_raw_features_use_one_channel_unnormalised():
    model = _model(2, use_plot_images=False).eval()
    x = torch.randn(2, 1, 40, 24) * 30
    assert model.input_channels == 1
    assert torch.equal(model.normalize(x), x)
    assert model(x).shape == (2, 2)


def test_head_structure_and_dropout():
    model = _model(5, num_units=16, dropout=0.5, activation="arelu")
    assert model.head.dense.out_features == 16
    assert isinstance(model.head.activation, ARelu)
    assert model.head.dropout.p == 0.5
    assert model.head.output.out_features == 5


def test_unknown_activation_names_key_and_choices():
    with pytest.raises(DsplError, match=r"activation: unknown activation 'relux'.*arelu.*relu"):
        _model(2, activation="relux")
    with pytest.raises(DsplError, match=r"output_activation: unknown activation 'soft'"):
        _model(2, output_activation="soft")


def test_onnx_export_matches_pytorch(tmp_path):
    ort = importlib.import_module("onnxruntime")
    torch.manual_seed(0)
    model = _model(3, activation="arelu").eval()
    x = torch.rand(2, 3, 32, 32) * 255
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False, input_names=["plots"],
                      output_names=["scores"], dynamic_axes={"plots": {0: "batch"}, "scores": {0: "batch"}})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_scores,) = session.run(None, {"plots": x.numpy()})
    np.testing.assert_allclose(onnx_scores, model(x).detach().numpy(), atol=1e-5)
