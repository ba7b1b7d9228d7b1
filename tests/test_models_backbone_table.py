"""The README's backbone table, pinned literally: DeepSpectrumLite names -> the PyTorch model each one builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from dspl.errors import DsplError
from dspl.models.registry import DSL_BACKBONES, create_backbone, resolve_backbone_name

README = Path(__file__).resolve().parents[1] / "README.md"

# written out from the README ("Where dspl differs": mobilenet is mobilenetv1_100, xception is timm's
# legacy_xception, squeezenet_v1 is torchvision's SqueezeNet 1.0, nasnet_mobile is refused); the others keep
# their Keras application's architecture under timm's name
EXPECTED = {
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "resnet50": "resnet50",
    "xception": "legacy_xception",
    "inception_v3": "inception_v3",
    "densenet121": "densenet121",
    "densenet169": "densenet169",
    "densenet201": "densenet201",
    "mobilenet": "mobilenetv1_100",
    "mobilenet_v2": "mobilenetv2_100",
    "nasnet_large": "nasnetalarge",
    "inception_resnet_v2": "inception_resnet_v2",
    "squeezenet_v1": "squeezenet1_0",
}


@pytest.mark.parametrize(("name", "target"), sorted(EXPECTED.items()))
def test_deepspectrumlite_name_builds_the_documented_model(name, target):
    assert resolve_backbone_name(name) == target


def test_the_registry_holds_exactly_the_documented_names():
    assert {k: v for k, v in DSL_BACKBONES.items() if v is not None} == EXPECTED
    assert [k for k, v in DSL_BACKBONES.items() if v is None] == ["nasnet_mobile"]


def test_the_readme_lists_the_same_names():
    text = README.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `basemodel_name`"))
    names = re.findall(r"`([a-z0-9_/]+)`", row.split("DeepSpectrumLite name", 1)[1])
    expanded = []
    for name in names:
        if "/" in name:  # densenet121/169/201
            first, *rest = name.split("/")
            stem = first.rstrip("0123456789")
            expanded += [first] + [stem + suffix for suffix in rest]
        else:
            expanded.append(name)
    assert sorted(expanded) == sorted(EXPECTED)
    for phrase in ("`mobilenet` is `mobilenetv1_100`", "`xception` is timm's `legacy_xception`",
                   "`squeezenet_v1` is torchvision's SqueezeNet 1.0", "`nasnet_mobile` has no PyTorch port",
                   "(512 features)"):
        assert phrase in " ".join(text.split()), phrase


def test_nasnet_mobile_is_refused_with_suggestions():
    with pytest.raises(DsplError, match=r"nasnet_mobile.*no PyTorch port.*mnasnet_100"):
        resolve_backbone_name("nasnet_mobile")


@pytest.mark.parametrize(("name", "convolutions"), [("vgg16", 13), ("vgg19", 16)])
def test_vgg_ends_at_its_last_conv_block_with_512_features(name, convolutions):
    backbone = create_backbone(name, "")
    modules = list(backbone.module.modules())
    assert backbone.num_features == 512
    convs = [m for m in modules if isinstance(m, torch.nn.Conv2d)]
    # Keras' VGG16/19 without top: 13/16 3×3 convolutions, the last with 512 channels; no fc6/fc7
    assert len(convs) == convolutions and all(c.kernel_size == (3, 3) for c in convs)
    assert convs[-1].out_channels == 512
    assert not any(isinstance(m, torch.nn.Linear) for m in modules)
    with torch.no_grad():
        out = backbone.module.eval()(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 512)


def test_squeezenet_v1_is_torchvision_squeezenet_1_0():
    backbone = create_backbone("squeezenet_v1", "")
    first = backbone.module.features[0]
    # SqueezeNet 1.0 starts with a 7×7 convolution to 96 channels (1.1: 3×3 to 64)
    assert (first.kernel_size, first.out_channels) == ((7, 7), 96) and backbone.num_features == 512
