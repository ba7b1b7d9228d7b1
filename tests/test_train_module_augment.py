"""training_step: the loss is computed on what the real Augmenter returned (plots and mixed targets)."""

from __future__ import annotations

import pytest
import torch
from helpers import CLASS_DICT, tiny_config

from dspl.augment import Augmenter
from dspl.config import ClassConfig
from dspl.models.module import DsplModule


class AugmenterSpy(torch.nn.Module):
    """Wraps the module's real Augmenter: calls it unchanged and keeps copies of what went in and came out."""

    def __init__(self, real: Augmenter) -> None:
        super().__init__()
        self.real = real
        self.calls: list[dict[str, torch.Tensor]] = []

    @property
    def enabled(self) -> bool:
        return self.real.enabled

    def forward(self, images, targets, losses):
        out_images, out_targets = self.real(images, targets, losses)
        self.calls.append({"images": images.clone(), "targets": targets.clone(), "losses": losses.clone(),
                           "out_images": out_images.clone(), "out_targets": out_targets.clone()})
        return out_images, out_targets


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_the_loss_sees_the_augmented_plots_and_targets():
    # every sample augmented (da_prob 1), CutMix with large boxes and SpecAugment masks; no dropout, so that
    # the head's logits of the same plots are the same on a second pass
    hp = tiny_config(da_prob_min=1.0, da_prob_max=1.0, augment_cutmix=True, augment_specaug=True, cutmix_min=0.5,
                 cutmix_max=0.5, dropout=0.0)
    torch.manual_seed(0)
    module = DsplModule(hp, ClassConfig.from_dict(CLASS_DICT))
    assert isinstance(module.augmenter, Augmenter)
    module.augmenter.seed = 5
    spy = AugmenterSpy(module.augmenter)
    module.augmenter = spy

    seen_plots: list[torch.Tensor] = []
    real_logits = module.model.logits

    def recording_logits(plots):
        seen_plots.append(plots.detach().clone())
        return real_logits(plots)

    module.model.logits = recording_logits
    losses_seen: list[tuple[torch.Tensor, torch.Tensor, dict, torch.Tensor]] = []
    real_loss = module.loss_fn

    class RecordingLoss(torch.nn.Module):
        def forward(self, logits, targets, **kwargs):
            value = real_loss(logits, targets, **kwargs)
            losses_seen.append((logits.detach().clone(), targets.detach().clone(), kwargs, value.detach().clone()))
            return value

    module.loss_fn = RecordingLoss()

    batch = {"audio": torch.randn(8, 16000) * 0.1, "target": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}
    batch = module.on_after_batch_transfer(batch, 0)
    plots = batch["plots"].clone()
    loss = module.training_step(batch, 0)

    assert len(spy.calls) == 1
    call = spy.calls[0]
    assert torch.equal(call["images"], plots)
    one_hot = torch.nn.functional.one_hot(batch["target"], 3).float()
    assert torch.equal(call["targets"], one_hot)
    # the augmentation really changed the batch: the check below can tell the two apart
    assert (call["out_images"] != plots).any(dim=(1, 2, 3)).all()
    assert not torch.allclose(call["out_targets"], one_hot)

    # first pass ranks the clean batch, second pass trains on the Augmenter's output
    assert len(seen_plots) == 2
    assert torch.equal(seen_plots[0], plots)
    assert torch.equal(seen_plots[1], call["out_images"])
    ranking, training = losses_seen
    assert ranking[2] == {"reduction": "none"} and torch.equal(ranking[1], one_hot)
    assert training[2] == {} and torch.equal(training[1], call["out_targets"])
    assert torch.equal(loss.detach(), training[3])
    # and that loss is the loss of the augmented batch, not of the clean one
    with torch.no_grad():
        augmented_loss = real_loss(real_logits(call["out_images"]), call["out_targets"])
        clean_loss = real_loss(real_logits(plots), one_hot)
    assert float(loss.detach()) == pytest.approx(float(augmented_loss), rel=1e-5)
    assert abs(float(loss.detach()) - float(clean_loss)) > 1e-4


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_the_ranking_pass_predicts_as_deepspectrumlite_did_and_leaves_batchnorm_alone():
    """DeepSpectrumLite ranked the batch for SapAugment with training=False: BatchNorm's running statistics, no
    dropout. So the ranking losses are the eval-mode model's, only the training pass moves the running
    statistics, and the model is back in training mode for it."""
    hp = tiny_config(da_prob_min=1.0, da_prob_max=1.0, augment_cutmix=True, dropout=0.5)
    torch.manual_seed(0)
    module = DsplModule(hp, ClassConfig.from_dict(CLASS_DICT))
    module.train()
    spy = AugmenterSpy(module.augmenter)
    module.augmenter = spy
    batch = {"audio": torch.randn(8, 16000) * 0.1, "target": torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])}
    batch = module.on_after_batch_transfer(batch, 0)
    one_hot = torch.nn.functional.one_hot(batch["target"], 3).float()
    module.model.eval()
    with torch.no_grad():
        expected = module.loss_fn(module.model.logits(batch["plots"]), one_hot, reduction="none")
    module.model.train()
    norms = [m for m in module.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [int(m.num_batches_tracked) for m in norms]

    module.training_step(batch, 0)

    torch.testing.assert_close(spy.calls[0]["losses"], expected)
    steps = [int(m.num_batches_tracked) - b for m, b in zip(norms, before)]
    assert norms and max(steps) == 1 and min(steps) >= 0
    assert module.model.training


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_test_scores_are_empty_until_a_test_epoch_then_hold_its_chunks():
    torch.manual_seed(1)
    module = DsplModule(tiny_config(dropout=0.0), ClassConfig.from_dict(CLASS_DICT)).eval()
    assert module.test_scores.shape == (0,) and module.test_targets.shape == (0,)
    module.on_test_epoch_start()
    module.on_test_epoch_end()  # a test epoch without batches keeps them empty
    assert module.test_scores.numel() == 0 and module.test_targets.numel() == 0
    batches = [module.on_after_batch_transfer({"audio": torch.randn(n, 16000) * 0.1,
                                               "target": torch.arange(n) % 3}, 0) for n in (3, 2)]
    module.on_test_epoch_start()
    with torch.no_grad():
        for i, batch in enumerate(batches):
            module.test_step(batch, i)
        expected = torch.cat([module(b["plots"]) for b in batches])
    module.on_test_epoch_end()
    torch.testing.assert_close(module.test_scores, expected)
    assert module.test_targets.tolist() == [0, 1, 2, 0, 1]


def test_target_matrix_one_hot_classes_or_one_regression_column():
    categorical = DsplModule(tiny_config(), ClassConfig.from_dict(CLASS_DICT))
    assert torch.equal(categorical.target_matrix(torch.tensor([2, 0])), torch.tensor([[0.0, 0.0, 1.0],
                                                                                      [1.0, 0.0, 0.0]]))
    regression = DsplModule(tiny_config("regression"), ClassConfig.from_dict({"pitch": "Pitch"}))
    matrix = regression.target_matrix(torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    assert matrix.dtype == torch.float32 and torch.equal(matrix, torch.tensor([[0.25], [0.5], [0.75]]))


@pytest.mark.filterwarnings("ignore:.*self.log.*")
def test_validation_step_updates_the_validation_metrics_with_the_batch():
    torch.manual_seed(2)
    module = DsplModule(tiny_config(dropout=0.0), ClassConfig.from_dict(CLASS_DICT)).eval()
    batch = module.on_after_batch_transfer({"audio": torch.randn(6, 16000) * 0.1,
                                            "target": torch.tensor([0, 1, 2, 0, 1, 2])}, 0)
    with torch.no_grad():
        module.validation_step(batch, 0)
        predicted = module(batch["plots"]).argmax(1)
    accuracy = float((predicted == batch["target"]).float().mean())
    assert float(module.val_metrics.compute()["val/accuracy"]) == pytest.approx(accuracy)
