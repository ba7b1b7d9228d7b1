"""DsplModule: plots after the batch transfer, augmentation only in training, the schedule, reproducibility."""

import lightning as L
import pytest
import timm
import torch
from helpers import CLASS_DICT, tiny_config
from lightning.pytorch.callbacks import Callback
from torch.nn.modules.batchnorm import _BatchNorm

from dspl.config import ClassConfig, RunConfig
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
    first = read_model_file(train_tiny(example_dir, tmp_path / "a", hp).model_file).state
    second = read_model_file(train_tiny(example_dir, tmp_path / "b", hp).model_file).state
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    L.seed_everything(hp.training.seed, verbose=False)
    initial = DsplModule(hp, CLASSES).model.state_dict()
    assert not torch.equal(first["head.dense.weight"], initial["head.dense.weight"])


def test_fit_start_applies_the_devices_speed_ups_unless_turned_off():
    def spatial_conv_weight(module):
        return next(p for p in module.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)

    fast = DsplModule(tiny_config(), CLASSES)
    fast.on_fit_start()
    assert spatial_conv_weight(fast).is_contiguous(memory_format=torch.channels_last)
    assert fast.speed.autocast_dtype is None  # the CPU trains in float32
    plain = DsplModule(tiny_config(), CLASSES, channels_last=False)
    plain.on_fit_start()
    assert spatial_conv_weight(plain).is_contiguous()
