"""CutMix (dspl.augment.cutmix) through the real Augmenter: mixed targets are (1 − area)·own + area·partner,
measured on the pixels, and box sides follow cutmix_min (λ = 0, hardest sample) and cutmix_max (λ = 1, easiest
sample); the cutmix function's label weights and its one rectangular box."""

from __future__ import annotations

import pytest
import torch
from helpers import augment_settings, distinct_images

from dspl.augment import Augmenter, cutmix


def _hp(**overrides):
    """CutMix on for every sample (da_prob 1), the rest as helpers.augment_settings."""
    return augment_settings(**{"augment_cutmix": True, "da_prob_min": 1.0, "da_prob_max": 1.0, **overrides})


def _boxes(mixed: torch.Tensor) -> list[dict | None]:
    """Per sample: the pasted box (partner, rows, cols, area share) read off the pixels; None if nothing pasted."""
    b, _, h, w = mixed.shape
    boxes = []
    for i in range(b):
        changed = (mixed[i, 0] != i + 1).nonzero()
        if not len(changed):
            boxes.append(None)
            continue
        values = mixed[i, 0][mixed[i, 0] != i + 1].unique()
        assert len(values) == 1 and torch.equal((mixed[i] != i + 1).all(0), (mixed[i] != i + 1).any(0))
        rows, cols = changed[:, 0], changed[:, 1]
        box = {"partner": int(values[0]) - 1, "top": int(rows.min()), "bottom": int(rows.max()),
               "left": int(cols.min()), "right": int(cols.max()), "area": len(changed) / (h * w)}
        box["height"], box["width"] = box["bottom"] - box["top"] + 1, box["right"] - box["left"] + 1
        assert box["height"] * box["width"] == len(changed)  # one rectangle
        boxes.append(box)
    return boxes


def _expected_targets(targets: torch.Tensor, boxes: list[dict | None]) -> torch.Tensor:
    expected = targets.clone()
    for i, box in enumerate(boxes):
        if box is not None:
            expected[i] = (1 - box["area"]) * targets[i] + box["area"] * targets[box["partner"]]
    return expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmenter_mixes_targets_by_the_pasted_area(seed):
    b, h, w = 12, 20, 30
    augmenter = Augmenter(_hp(cutmix_min=0.2, cutmix_max=0.7), seed=seed)
    images = distinct_images(b, h, w)
    targets = torch.eye(b)  # one class per sample: a target row shows exactly whom it was mixed with
    losses = torch.linspace(0, 1, b)
    mixed, mixed_targets = augmenter(images, targets, losses)
    boxes = _boxes(mixed)
    assert sum(box is not None for box in boxes) >= b // 2  # enough visible pastes for the test to mean something
    expected = _expected_targets(targets, boxes)
    torch.testing.assert_close(mixed_targets, expected, atol=1e-6, rtol=0)
    # regression-style targets (one column) mix the same way
    values = torch.arange(b, dtype=torch.float32).view(b, 1) * 10
    augmenter = Augmenter(_hp(cutmix_min=0.2, cutmix_max=0.7), seed=seed)
    mixed, mixed_values = augmenter(images, values, losses)
    torch.testing.assert_close(mixed_values, _expected_targets(values, _boxes(mixed)), atol=1e-5, rtol=0)


def test_cutmix_function_targets_and_returned_area():
    gen = torch.Generator().manual_seed(7)
    b, h, w = 16, 24, 16
    images, targets = distinct_images(b, h, w), torch.eye(b) * 2 + 0.5
    apply = torch.ones(b, dtype=torch.bool)
    apply[::4] = False
    mixed, mixed_targets, area = cutmix(images, targets, torch.full((b,), 0.4), apply, gen)
    boxes = _boxes(mixed)
    torch.testing.assert_close(mixed_targets, _expected_targets(targets, boxes), atol=1e-6, rtol=0)
    for i, box in enumerate(boxes):
        if box is None:
            assert not apply[i] or torch.equal(mixed_targets[i], targets[i])
        else:
            assert apply[i] and area[i] == pytest.approx(box["area"], abs=1e-6)
    assert sum(box is not None for box in boxes) >= 6
    assert (area[~apply] == 0).all()


@pytest.mark.parametrize(("low", "high"), [(0.3, 0.6), (0.6, 0.3), (0.45, 0.45)])
def test_box_sides_follow_cutmix_min_and_max_at_the_extremes_of_lambda(low, high):
    """λ = 1 for the smallest loss of the batch (box side cutmix_max of each image side), λ = 0 for the largest
    (cutmix_min). A box touching an image edge is clipped; one that does not has exactly the configured sides."""
    b, h, w = 6, 40, 60
    augmenter = Augmenter(_hp(cutmix_min=low, cutmix_max=high), seed=11)
    losses = torch.tensor([0.5, 0.0, 0.7, 9.0, 0.6, 0.8])  # sample 1: λ = 1; sample 3: λ = 0
    images = distinct_images(b, h, w)
    sides = {1: (round(high * h), round(high * w)), 3: (round(low * h), round(low * w))}
    unclipped = {1: 0, 3: 0}
    for _ in range(150):
        mixed, _ = augmenter(images, torch.eye(b), losses)
        boxes = _boxes(mixed)
        for i, (side_h, side_w) in sides.items():
            box = boxes[i]
            if box is None:
                continue
            assert box["height"] <= side_h and box["width"] <= side_w, (i, box)
            inner = box["top"] > 0 and box["left"] > 0 and box["bottom"] < h - 1 and box["right"] < w - 1
            if inner:
                assert (box["height"], box["width"]) == (side_h, side_w), (i, box)
                unclipped[i] += 1
    assert min(unclipped.values()) >= 10


def test_boxes_are_clipped_at_every_edge_of_the_image():
    """Box centres are uniform over the whole image, so boxes reach (and are cut at) all four edges."""
    gen = torch.Generator().manual_seed(3)
    b, h, w = 32, 20, 24
    images = distinct_images(b, h, w)
    reached = {"top": 0, "left": 0, "bottom": 0, "right": 0}
    for _ in range(10):
        mixed, _, area = cutmix(images, torch.eye(b), torch.full((b,), 0.5), torch.ones(b, dtype=torch.bool), gen)
        for box in _boxes(mixed):
            if box is None:
                continue
            reached["top"] += box["top"] == 0
            reached["left"] += box["left"] == 0
            reached["bottom"] += box["bottom"] == h - 1
            reached["right"] += box["right"] == w - 1
            # a clipped box is smaller than the configured 10 × 12
            assert box["height"] <= 10 and box["width"] <= 12
            assert (box["height"] < 10) == (box["top"] == 0 and box["bottom"] < 9 or box["bottom"] == h - 1
                                           and box["top"] > h - 10)
    assert min(reached.values()) >= 5, reached


def test_a_zero_fraction_pastes_nothing():
    gen = torch.Generator().manual_seed(4)
    b = 300  # on 3 × 3 images a box centred on (0, 0) comes up about 33 times: nothing may show even there
    images, targets = distinct_images(b, 3, 3), torch.eye(b)
    mixed, mixed_targets, area = cutmix(images, targets, torch.zeros(b), torch.ones(b, dtype=torch.bool), gen)
    assert torch.equal(mixed, images) and torch.equal(mixed_targets, targets) and (area == 0).all()


def test_cutmix_label_weight_equals_pasted_area():
    gen = torch.Generator().manual_seed(0)
    b, h, w = 64, 24, 40
    images, targets = distinct_images(b, h, w), torch.eye(b)
    fraction = torch.rand(b, generator=gen) * 0.6
    apply = torch.rand(b, generator=gen) < 0.7
    mixed, mixed_targets, area = cutmix(images, targets, fraction, apply, gen)
    own = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1) + 1
    pasted = (mixed != own).float().mean(dim=(1, 2, 3))
    self_paired = mixed_targets.diagonal() == 1  # partner was the sample itself: nothing visible changes
    assert torch.allclose(pasted[~self_paired], area[~self_paired], atol=1e-6)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(b))
    assert torch.allclose(mixed_targets.diagonal()[~self_paired], 1 - area[~self_paired], atol=1e-6)
    assert (area[~apply] == 0).all() and torch.equal(mixed[~apply], images[~apply])
    assert (area <= torch.round(fraction * h) * torch.round(fraction * w) / (h * w) + 1e-6).all()
    assert (area[apply & (fraction > 0.1)] > 0).all()


def test_cutmix_box_is_one_rectangle_of_the_partner():
    gen = torch.Generator().manual_seed(1)
    images = distinct_images(4)
    mixed, _, _ = cutmix(images, torch.eye(4), torch.full((4,), 0.5), torch.ones(4, dtype=torch.bool), gen)
    for i in range(4):
        changed = (mixed[i, 0] != i + 1).nonzero()
        if len(changed):
            rows, cols = changed[:, 0], changed[:, 1]
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box == len(changed) and len(mixed[i, 0][mixed[i, 0] != i + 1].unique()) == 1
