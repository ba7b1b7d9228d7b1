"""SapAugment's sample-adaptive policy (Hu et al., 2020, arXiv:2011.01156): loss rank → strength λ.

The batch is ranked by per-sample training loss and each sample's normalised rank
``l = rank / (B − 1)`` (0 = smallest loss, 1 = largest) maps to
``λ = 1 − I_l(s·(1 − a), s·a)``, ``I`` being the regularised incomplete beta function (the paper's
policy function with parameters ``a`` and ``s``, DeepSpectrumLite's ``sap_aug_a``/``sap_aug_s``).
λ falls from 1 for the easiest sample to 0 for the hardest: hard samples are augmented mildly, easy
ones strongly; ``s`` sets how sharp the transition is, ``1 − a`` (the beta distribution's mean) where.
The B values depend only on the batch size, so they are computed once per size with
``scipy.special.betainc`` (torch has no betainc) and kept on the device; ranking runs in torch.
"""

from __future__ import annotations

import torch
from scipy.special import betainc

from dspl.errors import DsplError


class SapPolicy:
    """Maps per-sample losses [B] to augmentation strengths λ [B] in [0, 1]."""

    def __init__(self, a: float, s: float) -> None:
        if not 0.0 < a < 1.0:
            raise DsplError(f"sap_aug_a: {a!r} is outside (0, 1); SapAugment needs 0 < a < 1")
        if s <= 0.0:
            raise DsplError(f"sap_aug_s: {s!r} must be > 0")
        self.a = float(a)
        self.s = float(s)
        self._tables: dict[tuple[int, str], torch.Tensor] = {}

    def strength(self, rank: torch.Tensor) -> torch.Tensor:
        """λ for normalised ranks in [0, 1] (computed on the CPU with scipy, returned on rank's device)."""
        values = 1.0 - betainc(self.s * (1.0 - self.a), self.s * self.a, rank.detach().double().cpu().numpy())
        return torch.as_tensor(values, dtype=torch.float32, device=rank.device)

    def table(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """λ for ranks 0..B−1 of a batch of ``batch_size``, cached per size and device."""
        key = (batch_size, str(device))
        if key not in self._tables:
            rank = torch.arange(batch_size, dtype=torch.float64) / max(batch_size - 1, 1)
            self._tables[key] = self.strength(rank).to(device)
        return self._tables[key]

    def __call__(self, losses: torch.Tensor) -> torch.Tensor:
        """λ per sample from its loss rank within the batch (ties broken by position)."""
        losses = losses.detach().reshape(-1)
        ranks = torch.argsort(torch.argsort(losses, stable=True), stable=True)
        return self.table(losses.numel(), losses.device)[ranks]
