"""Optimizers by DeepSpectrumLite's names, with Keras' default hyper-parameters, FTRL-Proximal, and the schedule.

The schedule is DeepSpectrumLite's: with pretrained weights, ``pre_epochs`` with the backbone frozen at
``learning_rate`` and then ``epochs`` of fine-tuning at ``fine_learning_rate``; from scratch, every epoch at
``learning_rate``; dspl's ``lr_decay: cosine`` decays each phase along a half cosine.

Keras defaults used (tf.keras 2.x and Keras 3 agree): Adam/Nadam β1 0.9, β2 0.999, ε 1e-7;
Adadelta ρ 0.95, ε 1e-7; Adagrad initial accumulator 0.1, ε 1e-7; RMSprop ρ 0.9, no momentum,
ε 1e-7; SGD no momentum; FTRL learning-rate power −0.5, initial accumulator 0.1, l1 = l2 = 0,
l2-shrinkage 0, β 0. The updates follow tf.keras 2.x, which DeepSpectrumLite ran (the tests compare
every optimizer with tf_keras' legacy ones): PyTorch adds Adam's ε to the bias-corrected √v̂ where
Keras adds it to √v, a difference of order ε; Nadam's momentum schedule 0.96^(0.004·t) is PyTorch's
and tf.keras 2.x's (Keras 3 changed it to 0.96^t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from dspl.config import TrainingSettings
from dspl.config.schema import OPTIMIZERS
from dspl.errors import DsplError

Params = Iterable[torch.Tensor] | Iterable[dict]

FROZEN, FINETUNE, FULL = "frozen", "finetune", "full"


@dataclass(frozen=True)
class Schedule:
    """DeepSpectrumLite's schedule of a configuration's training part; ``pretrained``: the backbone starts from
    weights ('imagenet' or a file), so the first pre_epochs train with it frozen."""

    training: TrainingSettings
    pretrained: bool

    def phase(self, epoch: int) -> str:
        """FROZEN for the first pre_epochs of a pretrained backbone, then FINETUNE; FULL when training from scratch."""
        if not self.pretrained:
            return FULL
        return FROZEN if epoch < self.training.pre_epochs else FINETUNE

    def phase_learning_rate(self, phase: str) -> float:
        """fine_learning_rate while fine-tuning (when set and > 0), else learning_rate."""
        fine = self.training.fine_learning_rate
        return fine if phase == FINETUNE and fine else self.training.learning_rate

    def phase_epochs(self, phase: str) -> tuple[int, int]:
        """First epoch and number of epochs of ``phase``."""
        if phase == FROZEN:
            return 0, self.training.pre_epochs
        if phase == FINETUNE:
            return self.training.pre_epochs, self.training.epochs
        return 0, self.training.total_epochs

    def learning_rate(self, epoch: int) -> float:
        """The phase's learning rate, decayed along a half cosine over the phase's epochs when lr_decay is 'cosine'.

        Each phase restarts at its own rate, so DeepSpectrumLite's two-phase schedule keeps its shape.
        """
        phase = self.phase(epoch)
        rate = self.phase_learning_rate(phase)
        if self.training.lr_decay != "cosine":
            return rate
        start, length = self.phase_epochs(phase)
        return rate * 0.5 * (1.0 + math.cos(math.pi * (epoch - start) / max(length, 1)))


class PhaseSchedule(LambdaLR):
    """The learning rate of every epoch (Schedule.learning_rate) as a scheduler of an optimizer built at
    learning_rate; step it once per epoch."""

    def __init__(self, optimizer: Optimizer, schedule: Schedule) -> None:
        base = schedule.training.learning_rate
        super().__init__(optimizer, lambda epoch: schedule.learning_rate(epoch) / base)


class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al., 2013) with the update and defaults of ``tf.keras.optimizers.Ftrl``.

    Per weight: ``n' = n + g²``; ``z += g + 2·l2_shrinkage·w − (n'^(−p) − n^(−p))/lr · w``;
    ``w = (clip(z, −l1, l1) − z) / (n'^(−p)/lr + 2·(l2 + β/(2·lr)))`` with ``p = learning_rate_power``.
    """

    def __init__(self, params: Params, lr: float = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1, l1: float = 0.0, l2: float = 0.0,
                 l2_shrinkage: float = 0.0, beta: float = 0.0) -> None:
        if lr <= 0:
            raise ValueError(f"learning rate must be > 0, got {lr}")
        if learning_rate_power > 0:
            raise ValueError(f"learning_rate_power must be <= 0, got {learning_rate_power}")
        if initial_accumulator_value < 0:
            raise ValueError(f"initial_accumulator_value must be >= 0, got {initial_accumulator_value}")
        defaults = dict(lr=lr, learning_rate_power=learning_rate_power,
                        initial_accumulator_value=initial_accumulator_value, l1=l1, l2=l2,
                        l2_shrinkage=l2_shrinkage, beta=beta)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one FTRL-Proximal update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, power = group["lr"], -group["learning_rate_power"]
            l2 = group["l2"] + group["beta"] / (2.0 * lr)
            for w in group["params"]:
                if w.grad is None:
                    continue
                g = w.grad
                state = self.state[w]
                if not state:
                    state["accumulator"] = torch.full_like(w, group["initial_accumulator_value"])
                    state["linear"] = torch.zeros_like(w)
                n, z = state["accumulator"], state["linear"]
                n_new = n + g * g
                sigma = (n_new.pow(power) - n.pow(power)) / lr
                z.add_(g + 2.0 * group["l2_shrinkage"] * w - sigma * w)
                quadratic = n_new.pow(power) / lr + 2.0 * l2
                w.copy_((torch.clamp(z, -group["l1"], group["l1"]) - z) / quadratic)
                n.copy_(n_new)
        return loss


def create_optimizer(name: str, params: Params, lr: float) -> Optimizer:
    """The optimizer DeepSpectrumLite's ``optimizer`` key names, at learning rate ``lr``."""
    key = str(name).strip().lower()
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if key == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, rho=0.95, eps=1e-7)
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.0)
    if key == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, initial_accumulator_value=0.1, eps=1e-7)
    if key == "ftrl":
        return Ftrl(params, lr=lr)
    if key == "nadam":
        return torch.optim.NAdam(params, lr=lr, betas=(0.9, 0.999), eps=1e-7)
    if key == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7, momentum=0.0)
    raise DsplError(f"optimizer: unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
