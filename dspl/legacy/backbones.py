"""Backbones that compute exactly what DeepSpectrumLite's Keras applications computed (`keras_<name>`).

timm's and torchvision's networks have the same layers as Keras' but differ in details that move the
numbers: TensorFlow 'same' padding on stride-2 convolutions (MobileNetV2's stem) and Keras' fixed bottom-right
ZeroPadding2D before its stride-2 depthwise convolutions, BatchNorm epsilons (1e-3 in MobileNetV2, 1.001e-5
in the DenseNets), SqueezeNet 1.1 (the Keras port DeepSpectrumLite used) with floor-mode pooling, the
input scaling each Keras application expects, and Keras' ResNet50 v1 (biased convolutions, stride on the first
1x1 convolution of a block). `dspl import-keras` ports weights into these; their state
dicts have the same keys as the plain timm/torchvision models.
"""

from __future__ import annotations

import re
from typing import Callable

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn
from torch.nn import functional as F

from dspl.errors import DsplError
from dspl.legacy.scaling import CAFFE_BGR_MEAN, KERAS_SCALING
from dspl.models.backbones import SqueezeNetFeatures
from dspl.models.registry import Backbone, register_backbone

PREFIX = "keras_"
BOTTOM_RIGHT = (0, 1, 0, 1)  # F.pad order: left, right, top, bottom


class PaddedConv2d(nn.Conv2d):
    """A convolution without padding of its own after a fixed zero padding (Keras' ZeroPadding2D + 'valid')."""

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]) -> None:
        super().__init__(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                         conv.groups, conv.bias is not None)
        self.keras_pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad, then convolve."""
        return super().forward(F.pad(x, self.keras_pad))


def _set_batch_norm_eps(module: nn.Module, eps: float) -> None:
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eps = eps


def _timm(name: str, in_chans: int, **kwargs: object) -> nn.Module:
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="avg", in_chans=in_chans, **kwargs)


def _mobilenet_v2(in_chans: int) -> tuple[nn.Module, int]:
    module = _timm("mobilenetv2_100", in_chans, pad_type="same")  # the stem: Conv2D(padding='same', strides=2)
    for parent in list(module.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d) and child.stride == (2, 2) and child.groups > 1:
                setattr(parent, child_name, PaddedConv2d(child, BOTTOM_RIGHT))
    _set_batch_norm_eps(module, 1e-3)
    return module, module.num_features


def _densenet(name: str) -> Callable[[int], tuple[nn.Module, int]]:
    def build(in_chans: int) -> tuple[nn.Module, int]:
        module = _timm(name, in_chans)
        _set_batch_norm_eps(module, 1.001e-5)
        return module, module.num_features

    return build


def _vgg(name: str) -> Callable[[int], tuple[nn.Module, int]]:
    def build(in_chans: int) -> tuple[nn.Module, int]:
        module = _timm(name, in_chans)
        module.pre_logits = nn.Identity()  # Keras' VGG without its top ends at the last conv block
        return module, module.num_features

    return build


def _squeezenet(in_chans: int) -> tuple[nn.Module, int]:
    if in_chans != 3:
        raise ValueError("keras_squeezenet_v1 takes 3-channel plots")
    module = SqueezeNetFeatures("squeezenet1_1")
    for layer in module.features:
        if isinstance(layer, nn.MaxPool2d):
            layer.ceil_mode = False
    return module, module.num_features


def _with_bias(conv: nn.Conv2d) -> nn.Conv2d:
    """The same convolution with a bias (Keras' Conv2D default use_bias=True)."""
    return nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, bias=True)


def _resnet50(in_chans: int) -> tuple[nn.Module, int]:
    """Keras' ResNet50 (v1): biased convolutions and the stride of a downsampling block on its first 1x1 conv."""
    module = _timm("resnet50", in_chans)
    module.conv1 = _with_bias(module.conv1)
    for block in (b for layer in (module.layer1, module.layer2, module.layer3, module.layer4) for b in layer):
        stride = block.conv2.stride
        block.conv1, block.conv2, block.conv3 = (_with_bias(block.conv1), _with_bias(block.conv2),
                                                 _with_bias(block.conv3))
        block.conv1.stride, block.conv2.stride = stride, (1, 1)
        if block.downsample is not None:
            block.downsample[0] = _with_bias(block.downsample[0])
    _set_batch_norm_eps(module, 1.001e-5)
    return module, module.num_features


def _resnet_name(keras_name: str) -> str | None:
    """The timm module a Keras ResNet layer's weights go to (conv2_block1_0_conv -> layer1.0.downsample.0)."""
    if keras_name in ("conv1_conv", "conv1_bn"):
        return "conv1" if keras_name.endswith("conv") else "bn1"
    match = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", keras_name)
    if match is None:
        return None
    stage, block, index, kind = int(match[1]) - 1, int(match[2]) - 1, int(match[3]), match[4]
    if index == 0:
        return f"layer{stage}.{block}.downsample.{0 if kind == 'conv' else 1}"
    return f"layer{stage}.{block}.{kind}{index}"


# DeepSpectrumLite basemodel_name -> builder of its Keras-exact PyTorch backbone.
BUILDERS: dict[str, Callable[[int], tuple[nn.Module, int]]] = {
    "mobilenet_v2": _mobilenet_v2,
    "densenet121": _densenet("densenet121"),
    "densenet169": _densenet("densenet169"),
    "densenet201": _densenet("densenet201"),
    "vgg16": _vgg("vgg16"),
    "vgg19": _vgg("vgg19"),
    "squeezenet_v1": _squeezenet,
    "resnet50": _resnet50,
}
# Backbones whose Keras layer order differs from the module order: Keras layer name -> module name.
KERAS_NAME_MAPS: dict[str, Callable[[str], str | None]] = {"resnet50": _resnet_name}
KERAS_BACKBONES: tuple[str, ...] = tuple(PREFIX + name for name in BUILDERS)


def input_statistics(dsl_name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """mean and std (RGB, on 0..1) for SpectrumClassifier.normalize that give the Keras scaling's numbers.

    caffe mode's RGB -> BGR swap is not among them: the ported first convolution takes RGB instead.
    """
    mode = KERAS_SCALING[dsl_name]
    if mode == "tf":
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    if mode == "torch":
        return IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    return tuple(m / 255.0 for m in reversed(CAFFE_BGR_MEAN)), (1 / 255.0,) * 3


def keras_backbone(name: str, pretrained: bool, in_chans: int = 3) -> Backbone:
    """The Keras-exact backbone `keras_<DeepSpectrumLite name>` with the statistics of its Keras scaling (its
    weights come from `dspl import-keras`: there are no 'imagenet' ones)."""
    if pretrained:
        raise DsplError(f"weights: {name!r} has no 'imagenet' weights; set weights to a model file written "
                        "by `dspl import-keras`, or to '' for random initialisation")
    dsl_name = name.removeprefix(PREFIX)
    module, width = BUILDERS[dsl_name](in_chans)
    mean, std = input_statistics(dsl_name) if in_chans == 3 else ((0.0,) * in_chans, (1.0,) * in_chans)
    return Backbone(module, name, width, mean, std)


for _name in KERAS_BACKBONES:
    register_backbone(_name)(keras_backbone)
