"""SpecAugment-style masking (Park et al., 2019) on a batch: frequency and time bands set to a fill value."""

from __future__ import annotations

import torch


def mask_bands(images: torch.Tensor, dim: int, total: torch.Tensor, num_masks: int, apply: torch.Tensor,
               fill: torch.Tensor | float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask ``num_masks`` bands along ``dim`` (2 or 3) where ``apply`` [B] is true.

    ``total`` [B] is the share of the axis all masks of a sample cover together; each mask is
    ``round(total·L / num_masks)`` wide (L the axis length) and starts uniformly where it fits
    (masks may overlap). Masked values become ``fill`` (a scalar or a tensor broadcastable to images).
    """
    if num_masks <= 0:
        return images
    b, length = images.shape[0], images.shape[dim]
    width = torch.round(total * length / num_masks).clamp(0, length).view(b, 1)
    start = torch.floor(torch.rand((b, num_masks), device=images.device, generator=generator)
                        * (length - width + 1))
    pos = torch.arange(length, device=images.device).view(1, 1, length)
    band = ((pos >= start.unsqueeze(-1)) & (pos < (start + width).unsqueeze(-1))).any(1) & apply.view(b, 1)
    shape = [b, 1, 1, 1]
    shape[dim] = length
    return torch.where(band.view(shape), torch.as_tensor(fill, dtype=images.dtype, device=images.device),
                       images)
