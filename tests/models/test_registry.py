"""The backbone registry (dspl.models.registry, dspl.models.backbones): DeepSpectrumLite names → timm, errors
with suggestions, the backbones it builds."""

from __future__ import annotations

import io

import pytest
import timm
import torch

from dspl.errors import DsplError
from dspl.models.backbones import DSL_BACKBONES, TORCHVISION_BACKBONES, resolve_backbone_name
from dspl.models.registry import create_backbone


def test_every_deepspectrumlite_name_maps_to_an_existing_model():
    timm_models = set(timm.list_models())
    for dsl_name, target in DSL_BACKBONES.items():
        if target is None:
            continue
        assert target in timm_models or target in TORCHVISION_BACKBONES, dsl_name
        assert resolve_backbone_name(dsl_name) == target
    assert resolve_backbone_name("mobilenet") == "mobilenetv1_100"
    assert resolve_backbone_name("squeezenet_v1") == "squeezenet1_0"


def test_timm_names_pass_through():
    assert resolve_backbone_name("test_efficientnet") == "test_efficientnet"
    assert resolve_backbone_name("resnet50.a1_in1k") == "resnet50.a1_in1k"
    with pytest.raises(DsplError, match=r"resnet50.bogus.*resnet50.a1_in1k"):
        resolve_backbone_name("resnet50.bogus")


def test_name_without_pytorch_port_lists_alternatives():
    with pytest.raises(DsplError, match=r"basemodel_name: 'nasnet_mobile'.*mnasnet_100"):
        resolve_backbone_name("nasnet_mobile")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(DsplError, match=r"unknown backbone 'densenet12'.*densenet121"):
        resolve_backbone_name("densenet12")


def test_random_init_backbone_gives_pooled_features():
    backbone = create_backbone("test_efficientnet", "")
    out = backbone.module(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, backbone.num_features)
    assert len(backbone.mean) == 3 and len(backbone.std) == 3


def test_vgg_ends_at_its_last_conv_block_like_keras_without_top():
    backbone = create_backbone("vgg11", "")
    assert backbone.num_features == 512
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (7, 7) for m in backbone.module.modules())
    x = torch.rand(1, 3, 64, 64)  # 2x2 after the conv blocks: timm's fc6 would pool it up to 7x7
    assert backbone.module(x).shape == (1, 512)
    buffer = io.BytesIO()
    torch.onnx.export(backbone.module.eval(), (x,), buffer, opset_version=17, dynamo=False)
    assert buffer.tell() > 0


def test_torchvision_squeezenet_backbone_one_channel():
    backbone = create_backbone("squeezenet_v1", "", in_chans=1)
    assert backbone.module(torch.rand(2, 1, 48, 48)).shape == (2, 512)
