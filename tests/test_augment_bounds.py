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
