"""models/speed.py: which devices train with channels_last and bf16 autocast, and the switches that turn them off."""

import pytest
import torch

from dspl.models.speed import choose_speed, device_speed


@pytest.mark.parametrize(("capability", "channels_last", "dtype"), [
    ((9, 0), True, torch.bfloat16),   # Hopper (H100/H200)
    ((8, 0), True, torch.bfloat16),   # Ampere: bf16 tensor cores
    ((7, 5), True, None),             # Turing: tensor cores for channels_last, no bf16
    ((6, 1), False, None),            # Pascal: neither
])
def test_cuda_gets_what_its_compute_capability_supports(capability, channels_last, dtype):
    speed = choose_speed("cuda", capability)
    assert (speed.channels_last, speed.autocast_dtype) == (channels_last, dtype)


def test_the_cpu_trains_channels_last_in_bf16_only_with_matrix_tiles_and_other_devices_plainly():
    assert choose_speed("cpu") == choose_speed("cpu", None, mixed_precision=True)
    assert (choose_speed("cpu").channels_last, choose_speed("cpu").autocast_dtype) == (True, None)
    assert choose_speed("cpu").memory_format == torch.channels_last
    assert choose_speed("cpu", cpu_bf16_tiles=True).autocast_dtype == torch.bfloat16
    assert choose_speed("cpu", cpu_bf16_tiles=True, grouped_convolutions=True).autocast_dtype is None
    assert choose_speed("cpu", cpu_bf16_tiles=True, mixed_precision=False).autocast_dtype is None
    assert (choose_speed("mps").channels_last, choose_speed("mps").autocast_dtype) == (False, None)


@pytest.mark.parametrize(("amx", "avx512_bf16", "dtype"), [
    (True, True, torch.bfloat16), (True, False, None), (False, True, None)])
def test_a_cpu_device_reads_its_own_matrix_units(monkeypatch, amx, avx512_bf16, dtype):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    plain, depthwise = torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3, groups=8)
    assert device_speed(torch.device("cpu"), plain).autocast_dtype == dtype
    assert device_speed(torch.device("cpu"), torch.nn.Sequential(plain, depthwise)).autocast_dtype is None
    assert device_speed(torch.device("cpu"), plain, mixed_precision=False).autocast_dtype is None
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probe: float32
    assert device_speed(torch.device("cpu"), plain).autocast_dtype is None


def test_switches_turn_each_speed_up_off():
    assert choose_speed("cuda", (9, 0), channels_last=False).autocast_dtype == torch.bfloat16
    assert choose_speed("cuda", (9, 0), channels_last=False).memory_format == torch.contiguous_format
    assert choose_speed("cuda", (9, 0), mixed_precision=False).autocast_dtype is None
    assert not choose_speed("cpu", channels_last=False).channels_last
