"""CutMix (Yun et al., 2019) on a batch: paste a box from a partner sample, mix labels by its area."""

from __future__ import annotations

import torch


def _axis_span(length: int, size: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Start/end [B] of a segment of ``size`` centred uniformly in [0, length), clipped to the image."""
    centre = torch.floor(torch.rand(size.shape, device=size.device, generator=generator) * length)
    start = centre - torch.div(size, 2, rounding_mode="floor")
    return start.clamp(0, length), (start + size).clamp(0, length)


def cutmix(images: torch.Tensor, targets: torch.Tensor, fraction: torch.Tensor, apply: torch.Tensor,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix where ``apply`` [B] is true; returns (images, targets, pasted area share [B]).

    Each sample gets a box of ``fraction`` [B] of the image height by ``fraction`` of its width (a
    square in relative terms) centred uniformly over the image and clipped at its edges, filled from a
    partner drawn by a random permutation of the batch. Targets become
    ``(1 − area)·own + area·partner`` with ``area`` the clipped box's share of the image.
    """
    b, _, h, w = images.shape
    partner = torch.randperm(b, device=images.device, generator=generator)
    y0, y1 = _axis_span(h, torch.round(fraction * h), generator)
    x0, x1 = _axis_span(w, torch.round(fraction * w), generator)
    area = (y1 - y0) * (x1 - x0) / float(h * w) * apply.to(images.dtype)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    inside = ((rows >= y0.view(b, 1, 1)) & (rows < y1.view(b, 1, 1))
              & (cols >= x0.view(b, 1, 1)) & (cols < x1.view(b, 1, 1)) & apply.view(b, 1, 1))
    mixed = torch.where(inside.unsqueeze(1), images[partner], images)
    weight = area.to(targets.dtype).view(b, *([1] * (targets.ndim - 1)))
    return mixed, (1.0 - weight) * targets + weight * targets[partner], area
