"""SapAugment policy (dspl.augment.sapaugment): λ from the regularised incomplete beta function of the loss
rank; the bounds of sap_aug_a and sap_aug_s (found by the mutation bench: off-by-one comparisons survived)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import betainc

from dspl.augment import SapPolicy
from dspl.errors import DsplError


@pytest.mark.parametrize(("a", "s"), [(0.5, 10.0), (0.3, 1.0), (0.8, 100.0)])
def test_table_is_one_minus_incomplete_beta_of_normalised_rank(a, s):
    table = SapPolicy(a, s).table(9, torch.device("cpu"))
    rank = np.arange(9) / 8
    np.testing.assert_allclose(table.numpy(), 1 - betainc(s * (1 - a), s * a, rank), atol=1e-6)
    assert table[0] == pytest.approx(1.0) and table[-1] == pytest.approx(0.0)
    assert (torch.diff(table) <= 0).all()


def test_lambda_follows_the_loss_rank_not_the_position():
    policy = SapPolicy(0.5, 10.0)
    losses = torch.tensor([0.9, 0.1, 0.5, 2.0, 0.3])
    lam = policy(losses)
    table = policy.table(5, torch.device("cpu"))
    ranks = [3, 0, 2, 4, 1]
    assert torch.allclose(lam, table[ranks])
    order = torch.argsort(losses)
    assert (torch.diff(lam[order]) <= 0).all()  # higher loss, milder augmentation
    assert lam[3] == pytest.approx(0.0) and lam[1] == pytest.approx(1.0)


def test_a_moves_the_transition():
    mild, strong = SapPolicy(0.8, 10.0), SapPolicy(0.2, 10.0)
    cpu = torch.device("cpu")
    assert mild.table(11, cpu).sum() < strong.table(11, cpu).sum()


def test_invalid_parameters_name_the_key():
    with pytest.raises(DsplError, match="sap_aug_a"):
        SapPolicy(1.5, 10.0)
    with pytest.raises(DsplError, match="sap_aug_s"):
        SapPolicy(0.5, 0.0)


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
