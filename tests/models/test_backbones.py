"""dspl.models.backbones against the README: each DeepSpectrumLite name it lists builds the PyTorch model the
README says."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import ROOT

from dspl.errors import DsplError
from dspl.models.backbones import DSL_BACKBONES, resolve_backbone_name
from dspl.models.registry import create_backbone

README = ROOT / "README.md"


def readme_backbone_names() -> list[str]:
    """The DeepSpectrumLite names the README's `basemodel_name` row lists (`densenet121/169/201` expanded)."""
    row = next(line for line in README.read_text(encoding="utf-8").splitlines()
               if line.startswith("| `basemodel_name`"))
    names = []
    for name in re.findall(r"`([a-z0-9_/]+)`", row.split("DeepSpectrumLite name", 1)[1]):
        first, *rest = name.split("/")
        names += [first] + [first.rstrip("0123456789") + suffix for suffix in rest]
    return names


# the README's "Where dspl differs": these build a timm / torchvision model of another name; every other listed
# name keeps its Keras application's architecture under the same name in timm; nasnet_mobile is refused
RENAMED = {"xception": "legacy_xception", "mobilenet": "mobilenetv1_100", "mobilenet_v2": "mobilenetv2_100",
           "nasnet_large": "nasnetalarge", "squeezenet_v1": "squeezenet1_0"}
EXPECTED = {name: RENAMED.get(name, name) for name in readme_backbone_names()}


@pytest.mark.parametrize(("name", "target"), sorted(EXPECTED.items()))
def test_deepspectrumlite_name_builds_the_documented_model(name, target):
    assert resolve_backbone_name(name) == target


def test_the_registry_holds_exactly_the_documented_names():
    assert {k: v for k, v in DSL_BACKBONES.items() if v is not None} == EXPECTED
    assert [k for k, v in DSL_BACKBONES.items() if v is None] == ["nasnet_mobile"]


def test_the_readme_lists_the_documented_names():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert len(EXPECTED) == 13 and set(RENAMED) <= set(EXPECTED)
    for phrase in ("`mobilenet` is `mobilenetv1_100`", "`xception` is timm's `legacy_xception`",
                   "`squeezenet_v1` is torchvision's SqueezeNet 1.0", "`nasnet_mobile` has no PyTorch port",
                   "(512 features)"):
        assert phrase in text, phrase


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
