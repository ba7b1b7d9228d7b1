"""Random time and frequency stretching of plots on a batch: speaking rate and vocal tract length perturbation.

A speaker's rate stretches a spectrogram along time; a longer or shorter vocal tract scales its formants
along frequency (VTLP, Jaitly & Hinton, 2013). Both are resampled here from the plot itself, one affine
grid per sample, so the augmentation works on any backbone input and costs one ``grid_sample``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def stretch(images: torch.Tensor, time_scale: torch.Tensor, freq_scale: torch.Tensor,
            time_dim: int = 3) -> torch.Tensor:
    """Stretch each sample by ``time_scale`` [B] along time and ``freq_scale`` [B] along frequency.

    A scale above 1 lengthens the content (slower speech, lower formants), below 1 shortens it. Time is
    anchored at the start (column 0 / frame 0), frequency at its lowest bin (the bottom row of a plot, the
    first feature of raw features), so silence padding and 0 Hz stay where they are. Samples outside the
    source repeat its edge. ``time_dim`` is 3 for plots [B, C, freq, time] and 2 for raw features
    [B, 1, time, features].
    """
    b = images.shape[0]
    if time_dim == 3:
        x_scale, y_scale, x_anchor, y_anchor = time_scale, freq_scale, -1.0, 1.0
    else:
        x_scale, y_scale, x_anchor, y_anchor = freq_scale, time_scale, -1.0, -1.0
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
    # grid_sample reads the source at theta @ (x_out, y_out, 1): out = anchor + s·(in − anchor)
    theta[:, 0, 0] = 1.0 / x_scale
    theta[:, 0, 2] = x_anchor * (1.0 - 1.0 / x_scale)
    theta[:, 1, 1] = 1.0 / y_scale
    theta[:, 1, 2] = y_anchor * (1.0 - 1.0 / y_scale)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_scales(amount: torch.Tensor, apply: torch.Tensor,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Scales [B] log-uniform in [1/(1+amount), 1+amount] where ``apply`` [B] is true, else 1."""
    spread = torch.log1p(amount)
    u = torch.rand(amount.shape, device=amount.device, generator=generator) * 2.0 - 1.0
    return torch.where(apply, torch.exp(u * spread), torch.ones_like(amount))
