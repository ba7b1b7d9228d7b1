"""DsplModule (dspl.models.module): plots after the batch transfer, augmentation only in training, the loss on
what the real Augmenter returned, the schedule, reproducibility."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import timm
import torch
from helpers import CLASS_DICT, tiny_config, torch_threads
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from dspl.augment import Augmenter
from dspl.config import ClassConfig, RunConfig
from dspl.models import speed
from dspl.models.freezing import backbone_layers
from dspl.models.modelfile import read_model_file
from dspl.models.module import DsplModule
from dspl.models.optim import PhaseSchedule, Schedule
from dspl.workflows.train import TrainingData, TrainOptions, train_configuration

CLASSES = ClassConfig.from_dict(CLASS_DICT)


class RecordingAugmenter(torch.nn.Module):
    """Stands in for the Augmenter: records its calls and leaves the batch as it is."""

    enabled = True

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, images, targets, losses):
        self.calls.append((images.shape, targets.shape, losses.shape, losses.requires_grad))
        return images, targets


def test_plots_are_made_after_the_transfer_and_only_training_is_augmented():
    module = DsplModule(tiny_config(), CLASSES)
    module.augmenter = RecordingAugmenter()
    batch = {"audio": torch.randn(4, 16000) * 0.1, "target": torch.tensor([0, 1, 2, 1])}
    batch = module.on_after_batch_transfer(batch, 0)
    assert batch["plots"].shape == (4, 3, 32, 32) and not batch["plots"].requires_grad
    assert 0 <= batch["plots"].min() and batch["plots"].max() <= 255
    with pytest.warns(UserWarning, match="self.log"):
        loss = module.training_step(batch, 0)
        module.validation_step(batch, 0)
    assert loss.requires_grad and loss.ndim == 0
    assert module.augmenter.calls == [((4, 3, 32, 32), (4, 3), (4,), False)]


def schedule_of(config: RunConfig) -> Schedule:
    return Schedule(config.training, config.model.pretrained)


@pytest.mark.parametrize(("weights", "phases"), [("file", ["frozen", "finetune"]), ("", ["full", "full"])])
def test_schedule_phases_and_learning_rates(weights, phases):
    hp = tiny_config(weights=weights and "/some/weights.pth", pre_epochs=1, epochs=1, learning_rate=0.01,
                 fine_learning_rate=0.001)
    assert hp.training.total_epochs == 2
    assert [schedule_of(hp).phase(epoch) for epoch in (0, 1)] == phases
    assert [schedule_of(hp).phase_learning_rate(p) for p in phases] == ([0.01, 0.001] if weights else [0.01, 0.01])
    assert schedule_of(hp.replace(fine_learning_rate=0.0)).phase_learning_rate("finetune") == 0.01


def test_cosine_decay_restarts_in_each_phase():
    hp = tiny_config(weights="/some/weights.pth", pre_epochs=2, epochs=4, learning_rate=0.01, fine_learning_rate=0.001,
                 lr_decay="cosine")
    rates = [schedule_of(hp).learning_rate(epoch) for epoch in range(6)]
    assert rates == pytest.approx([0.01, 0.005, 0.001, 0.001 * (2 + 2 ** 0.5) / 4, 0.0005, 0.001 * (2 - 2 ** 0.5) / 4])
    scratch = hp.replace(weights="")
    assert [schedule_of(scratch).learning_rate(e) for e in (0, 3)] == pytest.approx([0.01, 0.005])
    assert [schedule_of(hp.replace(lr_decay="none")).learning_rate(e) for e in (1, 5)] == [0.01, 0.001]


def test_phase_schedule_sets_each_epochs_rate_on_the_optimizer():
    """The scheduler object alone: stepped once per epoch it walks Schedule.learning_rate, restarts included."""
    hp = tiny_config(weights="/some/weights.pth", pre_epochs=2, epochs=3, learning_rate=0.01, fine_learning_rate=0.002,
                 lr_decay="cosine")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    schedule = PhaseSchedule(optimizer, schedule_of(hp))
    rates = []
    for _ in range(5):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.01, 0.005, 0.002, 0.0015, 0.0005])


class ScheduleRecorder(Callback):
    """At each epoch's first batch: trainable backbone parameters, lr, batch-norm modes and backbone state."""

    def __init__(self):
        self.epochs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx:
            return
        backbone = module.model.backbone
        self.epochs.append({
            "trainable": {n for n, p in backbone.named_parameters() if p.requires_grad},
            "head_trainable": all(p.requires_grad for p in module.model.head.parameters()),
            "lr": trainer.optimizers[0].param_groups[0]["lr"],
            "bn_training": {n: m.training for n, m in backbone.named_modules() if isinstance(m, _BatchNorm)},
            "state": {k: v.clone() for k, v in backbone.state_dict().items()},
        })


def train_tiny(example_dir, out_dir, hp, callbacks=()):
    options = TrainOptions(trainer_options={"accelerator": "cpu", "callbacks": list(callbacks),
                                            "enable_progress_bar": False})
    return train_configuration(0, hp, CLASSES, TrainingData(example_dir / "audio", example_dir / "label.csv"),
                               out_dir, options)


def test_pretrained_backbone_is_frozen_for_pre_epochs_then_its_last_share_fine_tunes(example_dir, tmp_path):
    backbone = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)
    torch.save(backbone.state_dict(), tmp_path / "weights.pth")
    initial = backbone.state_dict()
    hp = tiny_config(weights=str(tmp_path / "weights.pth"), pre_epochs=1, epochs=1, finetune_layer=0.5,
                 learning_rate=0.01, fine_learning_rate=0.001)
    recorder = ScheduleRecorder()
    result = train_tiny(example_dir, tmp_path / "out", hp, [recorder])
    frozen, finetune = recorder.epochs

    assert frozen["trainable"] == set() and frozen["head_trainable"] and frozen["lr"] == 0.01
    assert not any(frozen["bn_training"].values())
    # a frozen epoch changes neither the backbone's weights nor its batch-norm statistics
    assert all(torch.equal(finetune["state"][k], initial[k]) for k in initial)

    # test_efficientnet has 30 modules owning parameters (stem, five blocks, head); finetune_layer 0.5 unfreezes
    # ceil(0.5 · 30) = 15 of them, the last ones in execution order, written out here
    unfrozen = [(name, backbone.get_submodule(name)) for name in (
        "blocks.3.0.bn2", "blocks.3.0.se.conv_reduce", "blocks.3.0.se.conv_expand", "blocks.3.0.conv_pwl",
        "blocks.3.0.bn3", "blocks.4.0.conv_pw", "blocks.4.0.bn1", "blocks.4.0.conv_dw", "blocks.4.0.bn2",
        "blocks.4.0.se.conv_reduce", "blocks.4.0.se.conv_expand", "blocks.4.0.conv_pwl", "blocks.4.0.bn3",
        "conv_head", "bn2")]
    assert len(backbone_layers(backbone)) == 30
    expected = {f"{name}.{p}" for name, layer in unfrozen for p, _ in layer.named_parameters(recurse=False)}
    assert len(expected) == 25  # 5 bias-free convolutions, 4 SE convolutions with bias (8), 6 batch-norm pairs (12)
    assert finetune["trainable"] == expected and len(list(backbone.parameters())) == 47
    assert finetune["head_trainable"] and finetune["lr"] == 0.001
    trainable_layers = {name for name, _ in unfrozen}
    assert finetune["bn_training"] == {n: n in trainable_layers for n in finetune["bn_training"]}
    assert any(finetune["bn_training"].values())

    state = read_model_file(result.model_file).state
    changed = {k.removeprefix("backbone.") for k, v in state.items()
               if k.startswith("backbone.") and not torch.equal(v, initial[k.removeprefix("backbone.")])}
    assert changed and all(k.rsplit(".", 1)[0] in trainable_layers for k in changed)


@pytest.mark.parametrize(("lr_decay", "rates"), [("none", [0.01, 0.01]), ("cosine", [0.01, 0.005])])
def test_from_scratch_everything_trains_for_all_epochs(example_dir, tmp_path, lr_decay, rates):
    hp = tiny_config(weights="", pre_epochs=1, epochs=1, learning_rate=0.01, fine_learning_rate=0.001,
                     lr_decay=lr_decay)
    recorder = ScheduleRecorder()
    train_tiny(example_dir, tmp_path / "out", hp, [recorder])
    names = {n for n, _ in DsplModule(hp, CLASSES).model.backbone.named_parameters()}
    assert [e["trainable"] == names for e in recorder.epochs] == [True, True]
    assert [e["lr"] for e in recorder.epochs] == pytest.approx(rates)
    assert all(all(e["bn_training"].values()) for e in recorder.epochs)


def test_a_seeded_cpu_run_is_reproducible(example_dir, tmp_path):
    hp = tiny_config(epochs=2)
    assert hp.augment.augment_cutmix and hp.augment.augment_specaug
    with torch_threads(1):  # not the CPUs other processes leave free, which may change between the two runs
        first = read_model_file(train_tiny(example_dir, tmp_path / "a", hp).model_file).state
        second = read_model_file(train_tiny(example_dir, tmp_path / "b", hp).model_file).state
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    L.seed_everything(hp.training.seed, verbose=False)
    initial = DsplModule(hp, CLASSES).model.state_dict()
    assert not torch.equal(first["head.dense.weight"], initial["head.dense.weight"])


@pytest.mark.parametrize(("backbone", "tiles", "dtype"), [
    ("test_resnet", True, torch.bfloat16),   # a CPU with AMX, plain convolutions: bf16
    ("test_resnet", False, None),            # bf16 emulated: float32
    ("test_efficientnet", True, None),       # depthwise convolutions train slower in bf16: float32
])
def test_fit_start_applies_the_devices_speed_ups_unless_turned_off(monkeypatch, backbone, tiles, dtype):
    def spatial_conv_weight(module):
        return next(p for p in module.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)

    monkeypatch.setattr(speed, "cpu_has_bf16_tiles", lambda: tiles)
    config = tiny_config().replace(basemodel_name=backbone)
    fast = DsplModule(config, CLASSES)
    fast.on_fit_start()
    assert spatial_conv_weight(fast).is_contiguous(memory_format=torch.channels_last)
    assert fast.speed.autocast_dtype == dtype
    plain = DsplModule(config, CLASSES, channels_last=False, mixed_precision=False)
    plain.on_fit_start()
    assert spatial_conv_weight(plain).is_contiguous()
    assert plain.speed.autocast_dtype is None


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
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor computes metrics of nothing (torchmetrics warns)
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
