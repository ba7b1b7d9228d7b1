"""Which speed-ups a training device gets: channels_last memory format and bf16 mixed precision.

Both change only how the numbers are stored and rounded, not the model. channels_last lets oneDNN (CPU) and
tensor cores (CUDA from Volta, compute capability 7.0) skip layout conversions; on a 2-core CPU it halved the
time of a MobileNetV2 training step (bench/RESULTS.md). bf16 autocast needs bf16 matrix units: tensor cores on
CUDA (Ampere, 8.0), AMX tiles on a CPU. On a CPU with AMX it ran a densenet121 training step 2.3x and a resnet10t
step 1.5x faster than float32, but grouped (depthwise) convolutions train slower in bf16 there (efficientnet_b0
0.54x, mobilenetv3 0.6-0.8x: their backward pass), so a CPU trains in bf16 only with AMX and a model without
grouped convolutions; other CPUs emulate bf16 and train in float32 (bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DeviceSpeed:
    """The training speed-ups for one device: its memory format and its autocast dtype (None: float32)."""

    channels_last: bool
    autocast_dtype: torch.dtype | None

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def choose_speed(device_type: str, capability: tuple[int, int] | None = None, *, cpu_bf16_tiles: bool = False,
                 grouped_convolutions: bool = False, channels_last: bool = True,
                 mixed_precision: bool = True) -> DeviceSpeed:
    """The speed-ups for a device of ``device_type`` (CUDA: of compute ``capability``; a CPU: with bf16 matrix
    tiles or not) training a model with or without ``grouped_convolutions``, as far as allowed.

    ``channels_last``/``mixed_precision`` false turn them off whatever the device.
    """
    if device_type == "cuda":
        major_minor = capability or (0, 0)
        return DeviceSpeed(channels_last and major_minor >= (7, 0),
                           torch.bfloat16 if mixed_precision and major_minor >= (8, 0) else None)
    if device_type == "cpu":
        bf16 = mixed_precision and cpu_bf16_tiles and not grouped_convolutions
        return DeviceSpeed(channels_last, torch.bfloat16 if bf16 else None)
    return DeviceSpeed(False, None)


def cpu_has_bf16_tiles() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (AMX tiles and AVX512-BF16), as torch's CPU probes say."""
    probes = (getattr(torch.cpu, "_is_amx_tile_supported", None), getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    return all(probe is not None and probe() for probe in probes)


def has_grouped_convolutions(model: nn.Module) -> bool:
    """Whether any convolution of ``model`` is grouped (depthwise convolutions included)."""
    return any(isinstance(layer, nn.modules.conv._ConvNd) and layer.groups > 1 for layer in model.modules())


def device_speed(device: torch.device, model: nn.Module, *, channels_last: bool = True,
                 mixed_precision: bool = True) -> DeviceSpeed:
    """choose_speed for an actual device training ``model`` (a CUDA device's capability and a CPU's matrix
    units are read from the device)."""
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    tiles = device.type == "cpu" and mixed_precision and cpu_has_bf16_tiles()
    grouped = has_grouped_convolutions(model)
    return choose_speed(device.type, capability, cpu_bf16_tiles=tiles, grouped_convolutions=grouped,
                        channels_last=channels_last, mixed_precision=mixed_precision)
