"""Argument bounds of the feature functions (found by the mutation bench: a condition weakened from `or` to
`and` survived every test)."""

from __future__ import annotations

import pytest

from dspl.features.resize import RESIZE_METHODS, resize_matrix


@pytest.mark.parametrize("method", RESIZE_METHODS)
@pytest.mark.parametrize(("in_size", "out_size"), [(0, 4), (4, 0), (0, 0), (-1, 3)])
def test_resize_matrix_refuses_empty_sizes(method, in_size, out_size):
    with pytest.raises(ValueError, match="resize sizes must be positive"):
        resize_matrix(in_size, out_size, method)


@pytest.mark.parametrize("method", RESIZE_METHODS)
def test_resize_matrix_from_and_to_one_pixel(method):
    assert resize_matrix(1, 5, method).shape == (5, 1)
    assert resize_matrix(5, 1, method).shape == (1, 5)
