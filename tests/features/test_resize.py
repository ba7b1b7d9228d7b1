"""dspl.features.resize: every tf.image.resize method x anti_alias as separable matrices, checked against TF;
argument bounds (found by the mutation bench: a condition weakened from `or` to `and` survived every test)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from dspl.features.resize import RESIZE_METHODS, as_selection, resize_images, resize_matrix

# (input h, w) -> (output h, w): upscaling, downscaling, mixed, non-square, one-pixel edge cases
SIZES = [((13, 7), (32, 24)), ((48, 40), (17, 9)), ((30, 64), (40, 16)), ((1, 5), (3, 1))]


@pytest.mark.parametrize("antialias", [False, True])
@pytest.mark.parametrize("method", RESIZE_METHODS)
def test_resize_matches_tf_image_resize(method: str, antialias: bool) -> None:
    tf = importlib.import_module("tensorflow")
    rng = np.random.default_rng(7)
    for (h, w), (out_h, out_w) in SIZES:
        image = rng.uniform(0.0, 255.0, (2, h, w, 3)).astype(np.float32)
        expected = tf.image.resize(image, (out_h, out_w), method=method, antialias=antialias).numpy()
        rows = torch.from_numpy(resize_matrix(h, out_h, method, antialias)).float()
        cols = torch.from_numpy(resize_matrix(w, out_w, method, antialias)).float()
        got = resize_images(torch.from_numpy(image).permute(0, 3, 1, 2), rows, cols).permute(0, 2, 3, 1).numpy()
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= 1e-3, f"{method} antialias={antialias} {h}x{w}->{out_h}x{out_w}"


def test_same_size_bilinear_and_nearest_are_identity() -> None:
    for method in ("bilinear", "nearest", "area"):
        assert np.allclose(resize_matrix(9, 9, method), np.eye(9))


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ValueError, match="resize method 'cubic'"):
        resize_matrix(4, 8, "cubic")


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_selecting_resizes_gather_the_same_numbers_as_the_product(method: str) -> None:
    """as_selection turns a nearest-neighbour matrix into indices (interpolating ones stay matrices), and
    resize_images gives the product's numbers bit for bit from indices on either or both axes."""
    images = torch.from_numpy(np.random.default_rng(3).uniform(0.0, 255.0, (2, 3, 13, 7)).astype(np.float32))
    rows = torch.from_numpy(resize_matrix(13, 32, method)).float().flip(0)
    cols = torch.from_numpy(resize_matrix(7, 24, method)).float()
    expected = resize_images(images, rows, cols)
    rows_index, cols_index = as_selection(rows), as_selection(cols)
    assert (rows_index.dtype == torch.int64) == (method == "nearest")
    for r, c in ((rows_index, cols_index), (rows_index, cols), (rows, cols_index)):
        assert torch.equal(resize_images(images, r, c), expected)


@pytest.mark.parametrize("method", RESIZE_METHODS)
@pytest.mark.parametrize(("in_size", "out_size"), [(0, 4), (4, 0), (0, 0), (-1, 3)])
def test_resize_matrix_refuses_empty_sizes(method, in_size, out_size):
    with pytest.raises(ValueError, match="resize sizes must be positive"):
        resize_matrix(in_size, out_size, method)


@pytest.mark.parametrize("method", RESIZE_METHODS)
def test_resize_matrix_from_and_to_one_pixel(method):
    assert resize_matrix(1, 5, method).shape == (5, 1)
    assert resize_matrix(5, 1, method).shape == (1, 5)
