"""dspl.spec: frame counts without padding and the cepstral lifter weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dspl.spec import lifter_weights, num_frames


def test_num_frames_without_padding() -> None:
    assert num_frames(32000, 2048, 1024) == 30
    assert num_frames(2047, 2048, 1024) == 0


def test_lifter_weights() -> None:
    assert np.array_equal(lifter_weights(5, 0), np.ones(5))
    assert lifter_weights(3, 22)[1] == pytest.approx(1 + 11 * math.sin(math.pi / 22))
