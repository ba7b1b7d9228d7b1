"""The LightningModule: plots on the training device, SapAugment/CutMix/SpecAugment, DeepSpectrumLite's schedule."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn

from dspl.augment import Augmenter
from dspl.config import ClassConfig, RunConfig
from dspl.features import PlotTransform
from dspl.models.classifier import create_model
from dspl.models.freezing import freeze_backbone, unfreeze_last
from dspl.models.losses import create_loss
from dspl.models.metrics import create_metrics
from dspl.models.optim import FINETUNE, FROZEN, PhaseSchedule, Schedule, create_optimizer
from dspl.models.speed import DeviceSpeed, device_speed


class DsplModule(L.LightningModule):
    """Classifier of spectrogram plots that makes its plots from raw audio chunks on its own device.

    Checkpoints store the configuration and classes as plain data (``hyper_parameters``: ``hp``, ``classes``),
    which dspl.models.modelfile.read_checkpoint reads back without running code. ``pretrained=False`` skips
    loading the backbone's weights (for restoring a trained module); the training schedule still follows the
    configuration's ``weights``. ``channels_last`` and ``mixed_precision`` allow the training device's speed-ups
    (models/speed.py: channels_last memory format, bf16 autocast where the GPU or CPU multiplies bf16 in
    hardware and the model gains from it); they change rounding, not the model.
    """

    def __init__(self, config: RunConfig, classes: ClassConfig, pretrained: bool = True,
                 channels_last: bool = True, mixed_precision: bool = True) -> None:
        super().__init__()
        # a checkpoint restores every weight, so rebuilding from it never needs the pretrained ones (no download)
        self.save_hyperparameters({"hp": config.to_dict(), "classes": classes.to_dict(), "pretrained": False})
        self.config = config
        self.classes = classes
        self.features = PlotTransform(config.spec)
        self.model = create_model(config.model, classes.num_classes, in_chans=config.spec.input_channels,
                                  pretrained=pretrained)
        self.augmenter = Augmenter(config.augment, plots=config.spec.use_plot_images)
        self.schedule = Schedule(config.training, config.model.pretrained)
        self.loss_fn = create_loss(config.training.loss, config.prediction_type, config.model.output_activation)
        labels = classes.labels
        self.val_metrics = create_metrics(config.prediction_type, classes.num_classes, labels, prefix="val/")
        self.test_metrics = create_metrics(config.prediction_type, classes.num_classes, labels, prefix="test/")
        self.phase: str | None = None
        self.input_shape: tuple[int, ...] | None = None
        self.test_scores = torch.empty(0)
        self.test_targets = torch.empty(0)
        self._test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.speed_options = {"channels_last": channels_last, "mixed_precision": mixed_precision}
        self.speed = DeviceSpeed(False, None)

    def on_fit_start(self) -> None:
        """Apply the training device's speed-ups (see models/speed.py)."""
        self.speed = device_speed(self.device, self.model, **self.speed_options)
        self.model.to(memory_format=self.speed.memory_format)

    @property
    def categorical(self) -> bool:
        return self.config.categorical

    def forward(self, plots: torch.Tensor) -> torch.Tensor:
        """Scores (after the output activation) of a batch of plots."""
        return self.model(plots)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """Turn the raw audio chunks into plots on the device the batch now lives on (whole files: each from its
        own samples, by the batch's "length")."""
        with torch.no_grad():
            batch["plots"] = self.features(batch["audio"], batch.get("length"))
        if self.input_shape is None:
            self.input_shape = tuple(batch["plots"].shape[1:])
        return batch

    def target_matrix(self, target: torch.Tensor) -> torch.Tensor:
        """Targets as a float matrix [B, K]: one-hot classes, or the regression value in one column."""
        if self.categorical:
            return nn.functional.one_hot(target.long(), self.classes.num_classes).float()
        return target.float().reshape(-1, 1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Per-sample losses of a no-grad pass rank the batch for SapAugment; then the augmented batch trains."""
        plots, targets = batch["plots"], self.target_matrix(batch["target"])
        dtype = self.speed.autocast_dtype
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            if self.augmenter.enabled:
                plots, targets = self.augmenter(plots, targets, self._ranking_losses(plots, targets).float())
            loss = self.loss_fn(self.model.logits(plots), targets)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(plots))
        return loss

    def _ranking_losses(self, plots: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample losses of the model as it predicts (BatchNorm's running statistics, no dropout), which
        rank the batch for SapAugment: DeepSpectrumLite ran this pass with training=False, so it neither moves
        the running statistics nor depends on a dropout draw."""
        self.model.eval()
        try:
            with torch.no_grad():
                return self.loss_fn(self.model.logits(plots), targets, reduction="none")
        finally:
            self.model.train()

    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: nn.Module, prefix: str) -> torch.Tensor:
        """Loss and metric updates of a devel/test batch; returns the scores."""
        logits = self.model.logits(batch["plots"])
        loss = self.loss_fn(logits, batch["target"])
        scores = self.model.output_activation(logits)
        metrics.update(scores, batch["target"])
        self.log(f"{prefix}loss", loss, on_epoch=True, prog_bar=True, batch_size=len(logits), sync_dist=True)
        return scores

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics, "val/")

    def on_validation_epoch_end(self) -> None:
        # torchmetrics already synchronised the values across processes; sync_dist only averages equal numbers
        self.log_dict(self.val_metrics.compute(), sync_dist=True)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self._test_outputs = []

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        scores = self._evaluate(batch, self.test_metrics, "test/")
        self._test_outputs.append((scores.detach().float().cpu(), batch["target"].detach().cpu()))

    def on_test_epoch_end(self) -> None:
        """Log the test metrics and keep the chunk scores and targets for the report (an epoch without batches has
        neither)."""
        if self._test_outputs:
            self.log_dict(self.test_metrics.compute(), sync_dist=True)
            self.test_scores = torch.cat([s for s, _ in self._test_outputs])
            self.test_targets = torch.cat([t for _, t in self._test_outputs])
        self.test_metrics.reset()
        self._test_outputs = []

    def configure_optimizers(self) -> dict[str, Any]:
        """The configuration's optimizer over all classifier parameters (frozen ones get no gradient and stay put), its
        learning rate set per epoch by DeepSpectrumLite's schedule (optim.PhaseSchedule)."""
        training = self.config.training
        optimizer = create_optimizer(training.optimizer, self.model.parameters(), training.learning_rate)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": PhaseSchedule(optimizer, self.schedule),
                                                          "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        """Enter the schedule's phase for this epoch: freeze, or unfreeze the last finetune_layer share."""
        phase = self.schedule.phase(self.current_epoch)
        previous, self.phase = self.phase, phase
        if phase != previous:
            if phase == FROZEN:
                freeze_backbone(self.model)
            elif phase == FINETUNE:
                unfreeze_last(self.model, self.config.training.finetune_layer)
        if previous == FROZEN and phase != FROZEN:  # DeepSpectrumLite recompiled the model: fresh optimizer state
            for optimizer in self.trainer.optimizers:
                optimizer.state.clear()
