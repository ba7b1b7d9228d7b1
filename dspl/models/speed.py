"""Which speed-ups a training device gets: channels_last memory format and bf16 mixed precision.

Both change only how the numbers are stored and rounded, not the model. channels_last lets oneDNN (CPU) and
tensor cores (CUDA from Volta, compute capability 7.0) skip layout conversions; on a 2-core CPU it halved the
time of a MobileNetV2 training step (bench/RESULTS.md). bf16 autocast needs bf16 tensor cores (Ampere, 8.0);
on CPUs without AMX it is slower than float32, so a CPU trains in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DeviceSpeed:
    """The training speed-ups for one device: its memory format and its autocast dtype (None: float32)."""

    channels_last: bool
    autocast_dtype: torch.dtype | None

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format


def choose_speed(device_type: str, capability: tuple[int, int] | None = None, *, channels_last: bool = True,
                 mixed_precision: bool = True) -> DeviceSpeed:
    """The speed-ups for a device of ``device_type`` (CUDA: of compute ``capability``), as far as allowed.

    ``channels_last``/``mixed_precision`` false turn them off whatever the device.
    """
    if device_type == "cuda":
        major_minor = capability or (0, 0)
        return DeviceSpeed(channels_last and major_minor >= (7, 0),
                           torch.bfloat16 if mixed_precision and major_minor >= (8, 0) else None)
    if device_type == "cpu":
        return DeviceSpeed(channels_last, None)
    return DeviceSpeed(False, None)


def device_speed(device: torch.device, *, channels_last: bool = True, mixed_precision: bool = True) -> DeviceSpeed:
    """choose_speed for an actual device (a CUDA device's capability is read from it)."""
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    return choose_speed(device.type, capability, channels_last=channels_last, mixed_precision=mixed_precision)
