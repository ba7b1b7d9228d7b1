"""Step-by-step verification of exported models: max |difference| of scores and top-1 agreement."""

from __future__ import annotations

import logging

import numpy as np

from dspl.errors import DsplError

log = logging.getLogger(__name__)

FLOAT_TOLERANCE = 1e-4   # max |Δ score| between float32 steps (the README's export section)
MIN_AGREEMENT = 0.98     # top-1 agreement of int8 models with the float reference


def max_difference(reference: np.ndarray, candidate: np.ndarray) -> float:
    """max |reference - candidate| over all items and outputs (shapes must match)."""
    reference, candidate = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape:
        raise DsplError(f"verification: output shape {candidate.shape} differs from the reference {reference.shape}")
    return float(np.max(np.abs(reference - candidate))) if reference.size else 0.0


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of items whose top class is the same in both outputs.

    Where an output's top score is shared by several classes (an int8 softmax has 256 levels, so near-tied classes
    tie exactly), its top class is any of them: an item counts with the chance that a fair pick from each side's
    tied classes is the same class (two tied classes, one of them the other side's top: 1/2). Arg-max's first index
    instead would make the figure depend on the order of the classes.
    """
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    top_reference = reference == reference.max(axis=-1, keepdims=True)
    top_candidate = candidate == candidate.max(axis=-1, keepdims=True)
    shared = np.sum(top_reference & top_candidate, axis=-1)
    pairs = top_reference.sum(axis=-1) * top_candidate.sum(axis=-1)  # 0 where an output is NaN: no agreement
    return float(np.mean(shared / np.maximum(pairs, 1)))


def check_close(step: str, reference: np.ndarray, candidate: np.ndarray, tolerance: float = FLOAT_TOLERANCE) -> float:
    """Raise DsplError unless max |Δ| <= tolerance; return the difference (logged per step)."""
    difference = max_difference(reference, candidate)
    log.info("verify %s: max |Δ score| = %.3g (tolerance %.3g) on %d inputs", step, difference, tolerance,
             len(reference))
    if not np.isfinite(difference) or difference > tolerance:
        raise DsplError(f"{step}: max |Δ score| {difference:.3g} against the previous step exceeds {tolerance:.3g}")
    return difference


def faithful(agreement: float) -> bool:
    """Whether a quantised model's agreement with its float reference meets `dspl export`'s contract."""
    return agreement >= MIN_AGREEMENT


def check_agreement(step: str, reference: np.ndarray, candidate: np.ndarray, minimum: float = MIN_AGREEMENT,
                    regression: bool = False, advice: str = "") -> float:
    """Raise DsplError unless top-1 agreement >= minimum (regression: mean |Δ| <= 1 - minimum); return it.
    ``advice`` ends the error's line: what the user can do instead."""
    advice = f"; {advice}" if advice else ""
    if regression:
        error = float(np.mean(np.abs(np.asarray(reference) - np.asarray(candidate))))
        log.info("verify %s: mean |Δ| = %.3g on %d inputs", step, error, len(reference))
        if error > 1.0 - minimum:
            raise DsplError(f"{step}: mean |Δ| {error:.3g} against the float model exceeds {1.0 - minimum:.3g}"
                            f"{advice}")
        return 1.0 - error
    agreement = top1_agreement(reference, candidate)
    log.info("verify %s: top-1 agreement %.1f %% on %d inputs (max |Δ| %.3g)", step, 100 * agreement,
             len(reference), max_difference(reference, candidate))
    if agreement < minimum:
        raise DsplError(f"{step}: top-1 agreement {100 * agreement:.1f} % with the float model is below "
                        f"{100 * minimum:.0f} %{advice}")
    return agreement
