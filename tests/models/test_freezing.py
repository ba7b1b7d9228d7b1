"""Backbone freezing: all frozen with BatchNorm in eval, last share unfrozen, BN stats follow."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dspl.config import ModelSettings
from dspl.errors import DsplError
from dspl.models import create_model
from dspl.models.freezing import backbone_layers, freeze_backbone, unfreeze_last


def _model():
    settings = ModelSettings(basemodel_name="test_resnet", weights="", num_units=8, activation="relu", dropout=0.0)
    return create_model(settings, 3)


def _bns(model):
    return [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def test_freeze_backbone_freezes_params_and_batchnorm_statistics():
    model = _model()
    freeze_backbone(model)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert _bns(model) and not any(bn.training for bn in _bns(model))
    before = [bn.running_mean.clone() for bn in _bns(model)]
    model(torch.rand(4, 3, 32, 32) * 255)
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(before, _bns(model)))


@pytest.mark.parametrize("share", [0.0, 0.3, 0.7, 1.0])
def test_unfreeze_last_share_of_layers(share):
    model = _model()
    freeze_backbone(model)
    layers = backbone_layers(model.backbone)
    count = unfreeze_last(model, share)
    model.train()
    assert count == math.ceil(share * len(layers) - 1e-9)
    trainable = [any(p.requires_grad for p in m.parameters(recurse=False)) for _, m in layers]
    assert trainable == [False] * (len(layers) - count) + [True] * count
    for bn in _bns(model):
        assert bn.training == bn.weight.requires_grad


def test_unfrozen_batchnorm_updates_frozen_does_not():
    model = _model()
    unfreeze_last(model, 0.5)
    model.train()
    bns = _bns(model)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.rand(4, 3, 32, 32) * 255)
    changed = [not torch.equal(a, bn.running_mean) for a, bn in zip(before, bns)]
    assert changed == [bn.weight.requires_grad for bn in bns]
    assert any(changed) and not all(changed)


def test_eval_mode_still_switches_everything():
    model = _model()
    unfreeze_last(model, 1.0)
    model.eval()
    assert not any(bn.training for bn in _bns(model))


def test_share_outside_unit_interval():
    with pytest.raises(DsplError, match=r"finetune_layer: 1.5 is outside \[0, 1\]"):
        unfreeze_last(_model(), 1.5)
