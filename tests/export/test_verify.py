"""dspl.export.verify by hand: differences, top-1 agreement, and where each check draws its line."""

from __future__ import annotations

import numpy as np
import pytest

from dspl.errors import DsplError
from dspl.export import verify


def test_documented_thresholds():
    # the export contract: float32 steps within 1e-4 of each other, int8 top-1 agreement >= 98 %
    assert verify.FLOAT_TOLERANCE == 1e-4
    assert verify.MIN_AGREEMENT == 0.98


def test_max_difference_by_hand():
    reference = np.array([[0.1, 0.9], [0.5, 0.5], [0.3, 0.7]], dtype=np.float32)
    candidate = np.array([[0.1, 0.9], [0.8, 0.2], [0.25, 0.75]], dtype=np.float32)
    assert verify.max_difference(reference, candidate) == pytest.approx(0.3, abs=1e-7)
    assert verify.max_difference(candidate, reference) == pytest.approx(0.3, abs=1e-7)  # |Δ|, not Δ
    assert verify.max_difference(reference, reference) == 0.0
    assert verify.max_difference(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0


def test_max_difference_takes_lists_and_works_in_float64():
    assert verify.max_difference([[0.25, 0.75]], [[0.5, 0.5]]) == 0.25
    # float16 inputs: the difference is taken in float64, not rounded to float16 (where 2048 − 0.001 is 2048)
    a, b = np.array([2048.0], np.float16), np.array([0.001], np.float16)
    assert verify.max_difference(a, b) == 2048.0 - float(b[0]) != 2048.0


def test_max_difference_refuses_other_shapes():
    with pytest.raises(DsplError, match=r"output shape \(2, 3\) differs from the reference \(3, 2\)"):
        verify.max_difference(np.zeros((3, 2)), np.zeros((2, 3)))


def test_top1_agreement_by_hand():
    reference = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])
    candidate = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.0, 0.2, 0.8], [0.1, 0.2, 0.7]])
    # top classes 0, 1, 2, 2 against 0, 0, 2, 2: three of four items agree
    assert verify.top1_agreement(reference, candidate) == 0.75
    assert verify.top1_agreement(candidate, reference) == 0.75


def test_top1_agreement_is_per_item_not_per_class():
    reference = np.array([[0.9, 0.1], [0.2, 0.8]])      # items' top classes 0, 1
    candidate = np.array([[0.45, 0.55], [0.3, 0.7]])    # 1, 1: half agree
    assert verify.top1_agreement(reference, candidate) == 0.5
    # (arg-max down the columns would pick items 0, 1 in both and report full agreement)
    assert verify.top1_agreement(reference, reference) == 1.0


def test_a_tied_top_score_counts_with_the_chance_of_a_fair_pick():
    reference = np.array([[0.40, 0.45, 0.15], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]])
    candidate = np.array([[0.42578125, 0.42578125, 0.1484375],   # int8 levels: classes 0 and 1 tie, 1 is the top
                          [0.3046875, 0.3046875, 0.3046875],     # a three-way tie holding the reference's top
                          [0.1, 0.45, 0.45],                     # a tie without it
                          [0.1, 0.2, 0.7]])                      # no tie, same top
    assert verify.top1_agreement(reference, candidate) == pytest.approx((1 / 2 + 1 / 3 + 0 + 1) / 4)
    # ties on both sides: the chance that two fair picks meet (classes 0 and 1 against 1 and 2: 1 of 4 pairs)
    assert verify.top1_agreement(np.array([[0.4, 0.4, 0.2]]), np.array([[0.1, 0.45, 0.45]])) == 0.25


def test_agreement_does_not_depend_on_the_order_of_the_classes():
    rng = np.random.default_rng(0)
    reference = rng.random((64, 5))
    candidate = np.round(reference * 4) / 4   # coarse levels: many ties, as an int8 output has
    assert (candidate == candidate.max(axis=1, keepdims=True)).sum(axis=1).max() > 1
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        assert verify.top1_agreement(reference[:, order], candidate[:, order]) == \
            pytest.approx(verify.top1_agreement(reference, candidate))


def test_a_nan_output_never_agrees():
    reference = np.array([[0.9, 0.1], [0.2, 0.8]])
    candidate = np.array([[np.nan, np.nan], [0.2, 0.8]])
    assert verify.top1_agreement(reference, candidate) == 0.5
    with pytest.raises(DsplError, match="agreement 50.0 %"):
        verify.check_agreement("int8", reference, candidate)


def test_check_close_passes_at_the_tolerance_and_fails_above():
    reference = np.array([[0.5, 0.5]])
    assert verify.check_close("step", reference, reference + 1e-4, tolerance=2e-4) == pytest.approx(1e-4)
    assert verify.check_close("step", reference, reference + 0.25, tolerance=0.25) == 0.25  # the edge passes
    with pytest.raises(DsplError, match=r"step: max \|Δ score\| 0.5 against the previous step exceeds 0.25"):
        verify.check_close("step", reference, reference + 0.5, tolerance=0.25)
    with pytest.raises(DsplError, match="exceeds 0.0001"):
        verify.check_close("default", reference, reference + 2e-4)


def test_check_close_refuses_non_finite_scores():
    reference = np.array([[0.5, 0.5]])
    for bad in (np.nan, np.inf):
        with pytest.raises(DsplError, match="exceeds"):
            verify.check_close("step", reference, np.array([[0.5, bad]]), tolerance=1.0)


def test_check_agreement_categorical_edge():
    reference = np.tile([[0.9, 0.1]], (50, 1))
    candidate = reference.copy()
    candidate[:1] = [0.1, 0.9]  # 49 of 50 agree: 98 %
    assert verify.check_agreement("int8", reference, candidate) == 0.98
    candidate[:2] = [0.1, 0.9]  # 48 of 50: 96 %
    with pytest.raises(DsplError, match=r"int8: top-1 agreement 96.0 % with the float model is below 98 %"):
        verify.check_agreement("int8", reference, candidate)
    assert verify.check_agreement("int8", reference, candidate, minimum=0.96) == 0.96


def test_check_agreement_ends_its_error_with_the_advice_given():
    reference, candidate = np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([[0.1, 0.9], [0.2, 0.8]])
    with pytest.raises(DsplError, match=r"^int8: top-1 agreement 50.0 % with the float model is below 98 %; try fp16$"):
        verify.check_agreement("int8", reference, candidate, advice="try fp16")
    with pytest.raises(DsplError, match=r"^int8: mean \|Δ\| 0.4 against the float model exceeds 0.02; try fp16$"):
        verify.check_agreement("int8", reference[:, :1], candidate[:, :1], regression=True, advice="try fp16")
    with pytest.raises(DsplError, match=r"below 98 %$"):
        verify.check_agreement("int8", reference, candidate)


def test_check_agreement_regression_uses_the_mean_absolute_difference():
    reference = np.array([[0.5], [0.2], [0.9], [0.4]])
    candidate = reference + np.array([[0.01], [-0.03], [0.02], [0.0]])  # mean |Δ| 0.015
    assert verify.check_agreement("int8", reference, candidate, minimum=0.98, regression=True) == \
        pytest.approx(0.985)
    with pytest.raises(DsplError, match=r"int8: mean \|Δ\| 0.015 against the float model exceeds 0.01"):
        verify.check_agreement("int8", reference, candidate, minimum=0.99, regression=True)
    # at the edge (binary-exact figures): mean |Δ| 0.25 == 1 − 0.75 passes
    exact = np.array([[0.5], [0.25], [0.75], [0.0]])
    edge = exact + np.array([[0.25], [-0.25], [0.25], [0.25]])
    assert verify.check_agreement("x", exact, edge, minimum=0.75, regression=True) == 0.75
    with pytest.raises(DsplError, match="exceeds"):
        verify.check_agreement("x", exact, edge, minimum=0.875, regression=True)


def test_verification_raises_clear_errors() -> None:
    reference = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert verify.check_close("step", reference, reference + 5e-5) <= 1e-4
    with pytest.raises(DsplError, match="step: max"):
        verify.check_close("step", reference, reference + 1e-3)
    with pytest.raises(DsplError, match="agreement 50.0 %"):
        verify.check_agreement("q", reference, reference[:, ::-1] * [[1, 1], [0, 0]] + [[0, 0], [0.2, 0.8]])
    with pytest.raises(DsplError, match="shape"):
        verify.max_difference(reference, reference[:1])
    assert verify.check_agreement("r", np.array([[0.5]]), np.array([[0.505]]), regression=True) > 0.98


@pytest.mark.parametrize("agreement, expected", [(1.0, True), (0.98, True), (0.979, False), (0.0, False)])
def test_faithful_is_the_export_contracts_minimum_agreement(agreement, expected):
    assert verify.faithful(agreement) is expected
