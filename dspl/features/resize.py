"""tf.image.resize (TF2) as separable resize matrices, so a batched resize is two matmuls.

Every TF2 resize method is linear and separable: for an image ``X`` of shape ``[h, w]`` the result is
``R_h @ X @ R_w.T``. This module builds ``R`` (``[out_size, in_size]``, float64) for each method exactly as
TensorFlow's kernels define it:

* ``bilinear``/``bicubic`` without ``anti_alias``: ResizeBilinear/ResizeBicubic with half-pixel centres
  (bicubic: Keys kernel a = -0.5 read from TF's 1024-step coefficient table, out-of-image taps
  weighted 0 and the rest renormalised);
* ``nearest``: ResizeNearestNeighbor with half-pixel centres (``floor((i + 0.5) * in / out)`` in float32);
* ``area``: ResizeArea (box average over the exact overlap; ``anti_alias`` does not apply);
* ``bilinear``/``bicubic`` with ``anti_alias`` and ``lanczos3``/``gaussian``/``mitchellcubic``:
  ScaleAndTranslate with the triangle, Keys-cubic, Lanczos-3, Gaussian (radius 1.5, sigma 0.5) and
  Mitchell-Netravali kernels; with ``anti_alias`` the kernel is widened by the downscaling factor.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from dspl.spec import RESIZE_METHODS

_F32 = np.float32
_CUBIC_TABLE_SIZE = 1024
_FLOAT_MIN = float(np.finfo(np.float32).tiny)


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    near = ((1.5 * x - 2.5) * x) * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


def _mitchell_cubic(x: np.ndarray) -> np.ndarray:
    near = (((7.0 / 6.0) * x - 2.0) * x) * x + 8.0 / 9.0
    far = (((-7.0 / 18.0) * x + 2.0) * x - 10.0 / 3.0) * x + 16.0 / 9.0
    return np.where(x >= 2.0, 0.0, np.where(x >= 1.0, far, near))


def _lanczos3(x: np.ndarray) -> np.ndarray:
    pi = 3.14159265359  # the constant TF's kernel uses
    safe = np.where(x <= 1e-3, 1.0, x)
    value = 3.0 * np.sin(pi * safe) * np.sin(pi * safe / 3.0) / (pi * pi * safe * safe)
    return np.where(x > 3.0, 0.0, np.where(x <= 1e-3, 1.0, value))


def _gaussian(x: np.ndarray) -> np.ndarray:
    radius, sigma = 1.5, 0.5
    return np.where(x >= radius, 0.0, np.exp(-x * x / (2.0 * sigma * sigma)))


# ScaleAndTranslate kernels: name -> (kernel of |x|, radius)
_KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "triangle": (_triangle, 1.0),
    "keyscubic": (_keys_cubic, 2.0),
    "lanczos3": (_lanczos3, 3.0),
    "gaussian": (_gaussian, 1.5),
    "mitchellcubic": (_mitchell_cubic, 2.0),
}


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Divide each row by its sum, as TF does when the sum is not (almost) zero."""
    sums = matrix.sum(axis=1, keepdims=True)
    ok = np.abs(sums) >= 1000.0 * _FLOAT_MIN
    return np.where(ok, matrix / np.where(ok, sums, 1.0), matrix)


def _scale_and_translate(in_size: int, out_size: int, kernel_name: str, antialias: bool) -> np.ndarray:
    """ScaleAndTranslate's spans (translation 0, scale = out / in in float32)."""
    kernel, radius = _KERNELS[kernel_name]
    scale = _F32(out_size) / _F32(in_size)
    inv_scale = _F32(1.0) / scale
    kernel_scale = max(float(inv_scale), 1.0) if antialias else 1.0
    matrix = np.zeros((out_size, in_size))
    for x in range(out_size):
        sample = float(_F32(x + 0.5) * inv_scale)
        if sample < 0 or sample > in_size:
            continue
        start = min(max(math.ceil(sample - radius * kernel_scale - 0.5), 0), in_size - 1)
        end = min(max(math.floor(sample + radius * kernel_scale - 0.5), 0), in_size - 1) + 1
        sources = np.arange(start, end)
        matrix[x, start:end] = kernel(np.abs((sources + 0.5 - sample) / kernel_scale))
    return _normalise_rows(matrix)


def _legacy_bilinear(in_size: int, out_size: int) -> np.ndarray:
    """ResizeBilinear with half_pixel_centers=True."""
    scale = _F32(in_size) / _F32(out_size)
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        position = float((_F32(i) + _F32(0.5)) * scale - _F32(0.5))
        low = math.floor(position)
        lerp = position - low
        matrix[i, max(low, 0)] += 1.0 - lerp
        matrix[i, min(math.ceil(position), in_size - 1)] += lerp
    return matrix


def _cubic_table(offset: int) -> tuple[float, float, float, float]:
    """Keys (a = -0.5) weights of TF's 1024-step table for taps -1, 0, +1, +2."""
    a = -0.5

    def inner(x: float) -> float:
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def outer(x: float) -> float:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    near = offset / _CUBIC_TABLE_SIZE
    far = (_CUBIC_TABLE_SIZE - offset) / _CUBIC_TABLE_SIZE
    return outer(near + 1.0), inner(near), inner(far), outer(far + 1.0)


def _legacy_bicubic(in_size: int, out_size: int) -> np.ndarray:
    """ResizeBicubic with half_pixel_centers=True (Keys cubic, out-of-image taps dropped)."""
    scale = _F32(in_size) / _F32(out_size)
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        position = (_F32(i) + _F32(0.5)) * scale - _F32(0.5)
        low = math.floor(float(position))
        offset = int(np.rint(np.float32(position - _F32(low)) * _F32(_CUBIC_TABLE_SIZE)))
        for tap, weight in zip(range(low - 1, low + 3), _cubic_table(offset)):
            if 0 <= tap < in_size:
                matrix[i, tap] += weight
    return _normalise_rows(matrix)


def _legacy_nearest(in_size: int, out_size: int) -> np.ndarray:
    """ResizeNearestNeighbor with half_pixel_centers=True."""
    scale = _F32(in_size) / _F32(out_size)
    positions = (np.arange(out_size, dtype=_F32) + _F32(0.5)) * scale
    sources = np.clip(np.floor(positions).astype(np.int64), 0, in_size - 1)
    matrix = np.zeros((out_size, in_size))
    matrix[np.arange(out_size), sources] = 1.0
    return matrix


def _legacy_area(in_size: int, out_size: int) -> np.ndarray:
    """ResizeArea: the average over the exact overlap of each output cell with the input cells."""
    scale = _F32(in_size) / _F32(out_size)
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        begin, end = _F32(i) * scale, _F32(i + 1) * scale
        for cell in range(math.floor(begin), math.ceil(end)):
            if cell + 1 > end:
                overlap = scale if cell < begin else end - _F32(cell)
            else:
                overlap = _F32(cell + 1) - begin if cell < begin else _F32(1.0)
            matrix[i, min(max(cell, 0), in_size - 1)] += float(overlap)
    return matrix / float(scale)


def resize_matrix(in_size: int, out_size: int, method: str = "bilinear", antialias: bool = False) -> np.ndarray:
    """The ``[out_size, in_size]`` float64 matrix of tf.image.resize along one axis, for exact parity."""
    if method not in RESIZE_METHODS:
        raise ValueError(f"resize method {method!r} is not one of {', '.join(RESIZE_METHODS)}")
    if in_size < 1 or out_size < 1:
        raise ValueError(f"resize sizes must be positive, got {in_size} -> {out_size}")
    if method == "nearest":
        return _legacy_nearest(in_size, out_size)
    if method == "area":
        return _legacy_area(in_size, out_size)
    if method == "bilinear":
        if antialias:
            return _scale_and_translate(in_size, out_size, "triangle", True)
        return _legacy_bilinear(in_size, out_size)
    if method == "bicubic":
        if antialias:
            return _scale_and_translate(in_size, out_size, "keyscubic", True)
        return _legacy_bicubic(in_size, out_size)
    return _scale_and_translate(in_size, out_size, method, antialias)


def as_selection(matrix: torch.Tensor) -> torch.Tensor:
    """``matrix`` as the source index of each output row (int64 ``[out]``) if it only selects, i.e. has one 1 and
    zeros elsewhere in every row (``nearest``, or sizes that stay equal); else the matrix itself.

    resize_images gathers with such an index: the same numbers as the product (x·1 plus zeros), without the
    product's cost, which dominates a single plot.
    """
    ones = matrix == 1.0
    if bool((ones.sum(dim=1) == 1).all()) and bool(((matrix == 0.0) | ones).all()):
        return ones.to(torch.int64).argmax(dim=1)
    return matrix


def _resize_axis(images: torch.Tensor, resize: torch.Tensor, dim: int) -> torch.Tensor:
    """One axis (-2 or -1) of resize_images."""
    if resize.dtype == torch.int64:
        return images.index_select(dim, resize)
    return resize @ images if dim == -2 else images @ resize.T


def resize_images(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ images @ cols.T`` for ``[..., h, w]`` images, in the cheaper order, batched as one large product.

    ``rows`` and ``cols`` are resize matrices ``[out, in]`` or, from as_selection, index vectors ``[out]``.
    """
    if rows.dtype == torch.int64 and cols.dtype == torch.int64:  # one gather of every output pixel's source
        h, w = images.shape[-2:]
        source = (rows.view(-1, 1) * w + cols.view(1, -1)).flatten()
        flat = images.reshape(-1, h * w)
        return flat.gather(1, source.expand(flat.shape[0], -1)).view(*images.shape[:-2], rows.numel(), cols.numel())
    if rows.dtype == torch.int64 or cols.dtype == torch.int64:
        return _resize_axis(_resize_axis(images, rows, -2), cols, -1)
    out_h, in_h = rows.shape
    out_w, in_w = cols.shape
    if out_h * in_w * (in_h + out_w) <= in_h * out_w * (in_w + out_h):
        batch = images.shape[:-2]
        side_by_side = images.movedim(-2, 0).reshape(in_h, -1)  # [h, (...)·w]
        tall = (rows @ side_by_side).view(out_h, *batch, in_w).movedim(0, -2)
        return tall @ cols.T
    return rows @ (images @ cols.T)
