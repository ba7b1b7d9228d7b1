"""Time and frequency stretching: where content lands, which edge stays put, and the scales' range."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import augment_settings

from dspl.augment import Augmenter, random_scales, stretch


def _ramp(b: int, h: int, w: int, along: int) -> torch.Tensor:
    """Images whose value is the pixel's index along dim ``along`` (2: rows, 3: columns)."""
    index = torch.arange(h if along == 2 else w, dtype=torch.float32)
    shape = [1, 1, h, 1] if along == 2 else [1, 1, 1, w]
    return index.view(shape).expand(b, 3, h, w).clone()


def _source_position(j: torch.Tensor, scale: float) -> torch.Tensor:
    """Where output pixel j (counted from the anchored edge) reads the source, pixel centres at j + 0.5."""
    return (j + 0.5) / scale - 0.5


def test_unit_scales_are_identity():
    images = torch.rand(3, 3, 17, 23)
    out = stretch(images, torch.ones(3), torch.ones(3))
    assert torch.allclose(out, images, atol=1e-5)


@pytest.mark.parametrize("scale", [0.8, 1.25, 1.5])
def test_time_stretch_keeps_the_first_column_and_scales_positions(scale):
    w = 40
    out = stretch(_ramp(1, 8, w, along=3), torch.tensor([scale]), torch.ones(1))[0, 0, 0]
    expected = _source_position(torch.arange(w, dtype=torch.float32), scale).clamp(0, w - 1)
    assert torch.allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize("scale", [0.8, 1.2])
def test_frequency_stretch_is_anchored_at_the_bottom_row(scale):
    h = 32
    out = stretch(_ramp(1, h, 8, along=2), torch.ones(1), torch.tensor([scale]))[0, 0, :, 0]
    from_bottom = torch.arange(h, dtype=torch.float32)
    expected = (h - 1) - _source_position(from_bottom, scale).clamp(0, h - 1)
    assert torch.allclose(out.flip(0), expected, atol=1e-4)


def test_raw_features_stretch_frames_and_features_from_index_zero():
    frames, features = 30, 12
    time_ramp = torch.arange(frames, dtype=torch.float32).view(1, 1, frames, 1).expand(1, 1, frames, features)
    out = stretch(time_ramp, torch.tensor([1.5]), torch.ones(1), time_dim=2)[0, 0, :, 0]
    expected = _source_position(torch.arange(frames, dtype=torch.float32), 1.5).clamp(0, frames - 1)
    assert torch.allclose(out, expected, atol=1e-4)
    feature_ramp = torch.arange(features, dtype=torch.float32).view(1, 1, 1, features).expand(1, 1, frames, features)
    out = stretch(feature_ramp, torch.ones(1), torch.tensor([1.2]), time_dim=2)[0, 0, 0]
    expected = _source_position(torch.arange(features, dtype=torch.float32), 1.2).clamp(0, features - 1)
    assert torch.allclose(out, expected, atol=1e-4)


def test_random_scales_are_log_symmetric_within_bounds():
    gen = torch.Generator().manual_seed(0)
    amount = torch.full((20000,), 0.25)
    apply = torch.rand(20000, generator=gen) < 0.5
    scales = random_scales(amount, apply, gen)
    assert torch.equal(scales[~apply], torch.ones(int((~apply).sum())))
    logs = torch.log(scales[apply])
    assert logs.abs().max() <= math.log(1.25) + 1e-6
    assert abs(logs.mean().item()) < 0.005
    assert logs.std().item() == pytest.approx(math.log(1.25) / math.sqrt(3), rel=0.03)  # uniform in log


def test_augmenter_stretches_easy_samples_and_leaves_hard_ones():
    aug = Augmenter(augment_settings(augment_stretch=True, stretch_time_max=0.5, stretch_freq_max=0.0, da_prob_min=1.0,
                        da_prob_max=1.0), seed=3)
    assert aug.enabled
    b = 8
    images = _ramp(b, 8, 64, along=3) + 1
    losses = torch.arange(b, dtype=torch.float32)  # sample 0 is the easiest: λ = 1
    out, targets = aug(images, torch.eye(b), losses)
    assert torch.equal(targets, torch.eye(b))
    assert torch.allclose(out[-1], images[-1], atol=1e-5)  # the hardest sample: λ = 0, scale 1
    changed = (out - images).abs().flatten(1).amax(1) > 1e-3
    assert changed[:-1].sum() >= b - 3  # the rest get a scale drawn within 1/(1 + 0.5 λ) .. 1 + 0.5 λ
