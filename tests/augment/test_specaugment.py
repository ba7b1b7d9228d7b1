"""SpecAugment masks (dspl.augment.specaugment): mask widths within bounds, uniform starts, the fill value."""

from __future__ import annotations

import pytest
import torch

from dspl.augment import mask_bands


@pytest.mark.parametrize("num_masks", [1, 3])
def test_specaugment_mask_width_within_bounds(num_masks):
    gen = torch.Generator().manual_seed(2)
    b, h, w = 50, 40, 30
    images = torch.rand(b, 3, h, w) * 254 + 1
    total = torch.rand(b, generator=gen) * 0.5
    masked = mask_bands(images, 2, total, num_masks, torch.ones(b, dtype=torch.bool), 0.0, gen)
    zero_rows = (masked == 0).all(dim=3).all(dim=1)  # whole rows (all columns and channels)
    assert torch.equal((masked == 0), zero_rows.view(b, 1, h, 1).expand(b, 3, h, w))
    width = torch.round(total * h / num_masks)
    counts = zero_rows.sum(1)
    assert (counts <= width * num_masks).all()
    assert ((counts >= width) | (width == 0)).all()
    if num_masks == 1:
        assert torch.equal(counts, width.long())


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
