"""The training-time augmentation DeepSpectrumLite configured: SapAugment driving CutMix and SpecAugment.

Per batch: λ from the SapAugment policy (see :mod:`dspl.augment.sapaugment`) interpolates, per
sample, the probability that it is augmented at all (``da_prob_min`` → ``da_prob_max``), the CutMix
box side (``cutmix_min`` → ``cutmix_max`` of the image side) and the total SpecAugment mask widths
(``specaug_freq_min`` → ``_max`` of the frequency axis, ``specaug_time_min`` → ``_max`` of the time
axis, split over ``specaug_*_mask_num`` masks) and, with ``augment_stretch``, how far time and
frequency may be stretched (up to ``stretch_time_max`` / ``stretch_freq_max``). An augmented sample
gets every enabled transform: stretching, then CutMix, then the masks. Plot images (frequency up the
rows, time across the columns) are masked with 0, a black pixel, i.e. the normalised value of black;
raw features ([B, 1, frames, features]) with each sample's mean, as the SpecAugment paper does. All of
it runs batched on the images' device.
"""

from __future__ import annotations

import torch
from torch import nn

from dspl.augment.cutmix import cutmix
from dspl.augment.sapaugment import SapPolicy
from dspl.augment.specaugment import mask_bands
from dspl.augment.stretch import random_scales, stretch
from dspl.config import AugmentSettings


def _lerp(low: float, high: float, lam: torch.Tensor) -> torch.Tensor:
    return low + lam * (high - low)


class Augmenter(nn.Module):
    """``(images [B,C,H,W], targets [B,K] or [B,1], losses [B]) -> (images, targets)``; seeded by ``seed``.

    ``plots``: the inputs are plot images (else raw feature matrices ``[B, 1, frames, features]``).
    """

    def __init__(self, settings: AugmentSettings, plots: bool = True, seed: int | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.cutmix = settings.augment_cutmix
        self.specaug = settings.augment_specaug
        self.stretch = settings.augment_stretch
        self.plots = plots
        self.policy = SapPolicy(settings.sap_aug_a, settings.sap_aug_s)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    @property
    def enabled(self) -> bool:
        """Whether any transform is on (if not, callers can skip the loss forward pass)."""
        return self.cutmix or self.specaug or self.stretch

    def generator(self, device: torch.device) -> torch.Generator | None:
        """The seeded generator for ``device`` (None: the global RNG)."""
        if self.seed is None:
            return None
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    @torch.no_grad()
    def forward(self, images: torch.Tensor, targets: torch.Tensor,
                losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch; ``losses`` are per-sample training losses from a no-grad forward pass."""
        if not self.enabled:
            return images, targets
        s, gen = self.settings, self.generator(images.device)
        lam = self.policy(losses.to(images.device))
        prob = _lerp(s.da_prob_min, s.da_prob_max, lam)
        apply = torch.rand(prob.shape, device=images.device, generator=gen) < prob
        time_dim = 3 if self.plots else 2
        if self.stretch:
            time_scale = random_scales(s.stretch_time_max * lam, apply, gen)
            freq_scale = random_scales(s.stretch_freq_max * lam, apply, gen)
            images = stretch(images, time_scale.to(images.dtype), freq_scale.to(images.dtype), time_dim)
        if self.cutmix:
            images, targets, _ = cutmix(images, targets, _lerp(s.cutmix_min, s.cutmix_max, lam), apply, gen)
        if self.specaug:
            freq_dim = 5 - time_dim
            fill = 0.0 if self.plots else images.mean(dim=(1, 2, 3), keepdim=True)
            images = mask_bands(images, freq_dim, _lerp(s.specaug_freq_min, s.specaug_freq_max, lam),
                                s.specaug_freq_mask_num, apply, fill, gen)
            images = mask_bands(images, time_dim, _lerp(s.specaug_time_min, s.specaug_time_max, lam),
                                s.specaug_time_mask_num, apply, fill, gen)
        return images, targets
