"""Batched, on-device training augmentation: SapAugment policy, CutMix and SpecAugment."""

from dspl.augment.augmenter import Augmenter
from dspl.augment.cutmix import cutmix
from dspl.augment.sapaugment import SapPolicy
from dspl.augment.specaugment import mask_bands

__all__ = ["Augmenter", "SapPolicy", "cutmix", "mask_bands"]
