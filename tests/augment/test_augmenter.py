"""The Augmenter (dspl.augment.augmenter): probabilities, strength by loss rank, raw features, regression
targets, seeds, and the disabled identity."""

from __future__ import annotations

import pytest
import torch
from helpers import augment_settings

from dspl.augment import Augmenter


def test_augmentation_probability_matches_da_prob():
    torch.manual_seed(3)
    p = 0.3
    aug = Augmenter(augment_settings(augment_specaug=True, da_prob_min=p, da_prob_max=p, specaug_time_min=0.5,
                        specaug_time_max=0.5, specaug_freq_min=0.0, specaug_freq_max=0.0), seed=3)
    b = 4000
    images = torch.rand(b, 1, 8, 8) * 254 + 1
    out, _ = aug(images, torch.zeros(b, 1), torch.rand(b))
    fraction = float((out == 0).any(dim=(1, 2, 3)).float().mean())
    assert fraction == pytest.approx(p, abs=4 * (p * (1 - p) / b) ** 0.5)


def test_low_loss_samples_augmented_strongly_high_loss_not():
    aug = Augmenter(augment_settings(augment_specaug=True, da_prob_min=1.0, da_prob_max=1.0, specaug_freq_min=0.0,
                        specaug_freq_max=0.5, specaug_time_min=0.0, specaug_time_max=0.0), seed=0)
    b, h = 16, 64
    losses = torch.rand(b)
    out, _ = aug(torch.rand(b, 3, h, 8) * 254 + 1, torch.zeros(b, 1), losses)
    widths = (out == 0).all(dim=3).all(dim=1).sum(1)
    lam = aug.policy(losses)
    assert torch.equal(widths, torch.round(0.5 * lam * h).long())
    order = torch.argsort(losses)
    assert (torch.diff(widths[order]) <= 0).all()
    assert widths[order[0]] == 32 and widths[order[-1]] == 0


def test_probability_interpolates_with_lambda():
    aug = Augmenter(augment_settings(augment_specaug=True, da_prob_min=0.0, da_prob_max=1.0, specaug_time_min=0.5,
                        specaug_time_max=0.5), seed=1)
    b, trials = 8, 300
    hits = torch.zeros(b)
    losses = torch.arange(b, dtype=torch.float32)  # sample i has rank i
    for _ in range(trials):
        out, _ = aug(torch.rand(b, 1, 4, 8) * 254 + 1, torch.zeros(b, 1), losses)
        hits += (out == 0).flatten(1).any(1).float()
    expected = aug.policy.table(b, torch.device("cpu"))
    assert torch.allclose(hits / trials, expected, atol=0.1)
    assert hits[0] == trials and hits[-1] == 0


def test_raw_features_masked_along_feature_axis_with_sample_mean():
    aug = Augmenter(augment_settings(augment_specaug=True, da_prob_min=1.0, da_prob_max=1.0,
                                     specaug_freq_min=0.25, specaug_freq_max=0.25, specaug_time_min=0.0,
                                     specaug_time_max=0.0), plots=False, seed=0)
    features = torch.randn(4, 1, 20, 16) * 10 - 40  # [B, 1, frames, features]
    out, _ = aug(features, torch.zeros(4, 1), torch.rand(4))
    mean = features.mean(dim=(1, 2, 3)).view(4, 1, 1)
    masked_cols = (out[:, 0] == mean).all(dim=1)  # whole feature columns across all frames
    assert torch.equal(masked_cols.sum(1), torch.full((4,), 4))


def test_regression_targets_mixed_by_area_and_seed_reproducible():
    settings = augment_settings(augment_cutmix=True, augment_specaug=True, da_prob_min=1.0, da_prob_max=1.0)
    images, targets, losses = torch.rand(6, 3, 32, 32) * 255, torch.rand(6, 1), torch.rand(6)
    first = Augmenter(settings, seed=7)(images, targets, losses)
    second = Augmenter(settings, seed=7)(images, targets, losses)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[1].shape == (6, 1)
    assert (first[1] >= targets.min() - 1e-6).all() and (first[1] <= targets.max() + 1e-6).all()


def test_disabled_augmenter_is_identity():
    aug = Augmenter(augment_settings())
    images, targets = torch.rand(2, 3, 8, 8), torch.eye(2)
    assert not aug.enabled
    out = aug(images, targets, torch.rand(2))
    assert out[0] is images and out[1] is targets
