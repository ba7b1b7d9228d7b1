"""Boundaries of the augmentation parameters (found by the mutation bench: off-by-one comparisons survived)."""

from __future__ import annotations

import pytest

from dspl.augment import SapPolicy
from dspl.errors import DsplError


@pytest.mark.parametrize("a", [0.0, 1.0, -0.1, 1.1])
def test_sap_aug_a_must_lie_strictly_inside_0_1(a):
    with pytest.raises(DsplError, match="sap_aug_a"):
        SapPolicy(a, 10.0)


@pytest.mark.parametrize("a", [1e-6, 0.5, 1 - 1e-6])
def test_sap_aug_a_inside_0_1_is_accepted(a):
    assert SapPolicy(a, 10.0).a == a


@pytest.mark.parametrize("s", [0.0, -1.0])
def test_sap_aug_s_must_be_positive(s):
    with pytest.raises(DsplError, match="sap_aug_s"):
        SapPolicy(0.5, s)


def test_a_tiny_positive_s_is_accepted():
    assert SapPolicy(0.5, 1e-9).s == 1e-9


def test_mask_starts_are_uniform_over_every_position_where_the_mask_fits():
    import torch

    from dspl.augment import mask_bands

    gen = torch.Generator().manual_seed(0)
    b, length, width = 4000, 10, 3
    images = torch.ones(b, 1, length, 4)
    masked = mask_bands(images, 2, torch.full((b,), width / length), 1, torch.ones(b, dtype=torch.bool), 0.0, gen)
    rows = (masked[:, 0, :, 0] == 0).float()
    assert torch.equal(rows.sum(1), torch.full((b,), float(width)))
    starts = rows.argmax(1)
    counts = torch.bincount(starts, minlength=length)
    # starts 0 .. length - width (8 positions, the last mask ending on the last row), each about b / 8 times
    assert counts[length - width + 1:].sum() == 0
    expected = b / (length - width + 1)
    assert ((counts[:length - width + 1] - expected).abs() < 5 * expected ** 0.5).all(), counts


def test_mask_fill_defaults_to_zero():
    import torch

    from dspl.augment import mask_bands

    images = torch.full((2, 3, 8, 8), 7.0)
    masked = mask_bands(images, 3, torch.full((2,), 0.5), 1, torch.ones(2, dtype=torch.bool))
    assert set(masked.unique().tolist()) == {0.0, 7.0} and int((masked == 0).sum()) == 2 * 3 * 8 * 4
