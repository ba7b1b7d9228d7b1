"""Batched, on-device training augmentation: SapAugment policy, CutMix, SpecAugment and stretching."""

from dspl.augment.augmenter import Augmenter
from dspl.augment.cutmix import cutmix
from dspl.augment.sapaugment import SapPolicy
from dspl.augment.specaugment import mask_bands
from dspl.augment.stretch import random_scales, stretch

__all__ = ["Augmenter", "SapPolicy", "cutmix", "mask_bands", "random_scales", "stretch"]
