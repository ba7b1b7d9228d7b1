"""`train` (dspl.workflows.train) as DeepSpectrumLite documented it: flags, grid/SLURM, output layout, test
report, one-line errors, a last batch of one chunk, the folder of another configuration and --restart."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sys
from unittest.mock import patch

import lightning as L
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from lightning.pytorch.callbacks import RichProgressBar
from helpers import (
    CLASS_DICT,
    TINY,
    grid_file,
    leftovers,
    one_error_line,
    outside,
    partial_files,
    run,
    snapshot,
    spread_model_file,
    tiny_config,
    train_args,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dspl.cli.main import cli
from dspl.config import ClassConfig
from dspl.data.example import example_hp
from dspl.loading import load_model_file
from dspl.models.modelfile import read_checkpoint
from dspl.files import exclusive_lock
from dspl.workflows.callbacks import EpochCheckpoint, interrupts_raised
from dspl.workflows.train import LOCK_FILE, EpochProgressBar


def write_hp(path, prediction_type="categorical", **grid):
    """An hp config for the example data with a tiny model; ``grid`` keys give lists (several configurations)."""
    hp = {k: [v] for k, v in {**example_hp(prediction_type), **TINY, "epochs": 2}.items()}
    hp.update(grid)
    path.write_text(json.dumps(hp), encoding="utf-8")
    return path


SHORT_FLAGS = ("-d", "-md", "-hc", "-cc", "-l")
LONG_FLAGS = ("--data-dir", "--model-dir", "--hyper-config", "--class-config", "--label-file")


def run_train(example_dir, tmp_path, hp_config, class_config="class_config.json", label_file="label.csv",
              flags=SHORT_FLAGS, extra=()):
    values = (example_dir / "audio", tmp_path / "out", hp_config, example_dir / class_config, example_dir / label_file)
    args = ["train", *(item for pair in zip(flags, map(str, values)) for item in pair), *extra]
    return CliRunner().invoke(cli, args)


def event_data(log_dir):
    """Scalars and plugins of the TensorBoard event files in log_dir."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return events


def test_categorical_grid_writes_the_documented_layout(example_dir, tmp_path):
    hp_config = write_hp(tmp_path / "hp_config.json", learning_rate=[0.001, 0.002])
    result = run_train(example_dir, tmp_path, hp_config)
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.output and "UAR" in result.output and "macro avg" in result.output
    header = next(line for line in result.output.splitlines() if "true \\ predicted" in line)
    assert header.split("┃")[2:5] == [" low ", " high ", " noise "]  # short labels as column headers
    assert "│ low (Low tone) " in result.output  # rows add the names
    for index, lr in enumerate([0.001, 0.002]):
        model_dir = tmp_path / "out" / "models" / "example" / f"run_config_{index}"
        loaded = load_model_file(model_dir / "model.h5")
        assert loaded.config.to_dict()["learning_rate"] == lr and loaded.classes.labels == ("low", "high", "noise")
        restored = read_checkpoint(model_dir / "model.ckpt").state
        assert all(torch.equal(restored[k], v) for k, v in loaded.model.state_dict().items())
        events = event_data(tmp_path / "out" / "logs" / "example" / f"run_config_{index}")
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
        assert len(events.Scalars("val/uar")) == 2
        assert len(events.Scalars("test/uar")) == 1
        assert events.Scalars("hp/test_uar")[0].value == events.Scalars("test/uar")[0].value


def test_regression_with_ftrl_and_mae(example_dir, tmp_path):
    hp_config = write_hp(tmp_path / "hp_config.json", "regression")
    assert json.loads(hp_config.read_text())["optimizer"] == ["ftrl"]
    assert json.loads(hp_config.read_text())["loss"] == ["mae"]
    result = run_train(example_dir, tmp_path, hp_config, "regression_class_config.json", "regression_label.csv",
                       flags=LONG_FLAGS, extra=["--disable-cache"])
    assert result.exit_code == 0, result.output
    assert "ccc" in result.output and "rmse" in result.output
    model_dir = tmp_path / "out" / "models" / "example_regression" / "run_config_0"
    assert load_model_file(model_dir / "model.h5").classes.labels == ("pitch",)
    events = event_data(tmp_path / "out" / "logs" / "example_regression" / "run_config_0")
    assert len(events.Scalars("val/mae")) == 2


def test_slurm_array_task_trains_only_its_configuration(example_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    hp_config = write_hp(tmp_path / "hp_config.json", dropout=[0.1, 0.3], epochs=[1])
    result = run_train(example_dir, tmp_path, hp_config)
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out" / "models" / "example").iterdir()] == ["run_config_1"]
    loaded = load_model_file(tmp_path / "out" / "models" / "example" / "run_config_1" / "model.h5")
    assert loaded.config.model.dropout == 0.3


@pytest.mark.parametrize(("key", "value", "message"), [
    ("basemodel_name", "resnet_does_not_exist", "basemodel_name: unknown backbone 'resnet_does_not_exist'"),
    ("optimizer", "adamw", "key 'optimizer': value \"adamw\" is not one of adam, adadelta"),
    ("loss", "crossentropy_typo", "loss: unknown loss 'crossentropy_typo'"),
    ("activation", "relux", "activation: unknown activation 'relux'"),
    ("finetune_layer", 1.5, "key 'finetune_layer': value 1.5 is out of range, expected a number in [0, 1]"),
    ("epochs", 0, "(configuration 0): pre_epochs + epochs is 0, expected at least one epoch to train"),
])
def test_config_errors_are_one_clear_line(example_dir, tmp_path, key, value, message):
    hp_config = write_hp(tmp_path / "hp_config.json", **{key: [value]})
    result = run_train(example_dir, tmp_path, hp_config)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last


def test_label_not_in_class_config_is_one_clear_line(example_dir, tmp_path):
    (tmp_path / "classes.json").write_text(json.dumps({"low": "Low", "high": "High"}), encoding="utf-8")
    hp_config = write_hp(tmp_path / "hp_config.json")
    result = run_train(example_dir, tmp_path, hp_config, class_config=tmp_path / "classes.json")
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "class label 'noise' is not in the class config" in last


@pytest.fixture(scope="module")
def whole_file_example(example_dir, tmp_path_factory):
    """The example set with every file cut to its own length (0.45 s to 1.05 s): whole-file mode's case."""
    import shutil

    import soundfile as sf

    root = tmp_path_factory.mktemp("whole_files")
    shutil.copytree(example_dir, root, dirs_exist_ok=True)
    for i, path in enumerate(sorted((root / "audio").glob("*.wav"))):
        samples, rate = sf.read(path, dtype="float32")
        sf.write(path, samples[:int((0.45 + 0.15 * (i % 5)) * rate)], rate)
    return root


@pytest.mark.parametrize("prediction_type, class_config, label_file, metric", [
    ("categorical", "class_config.json", "label.csv", "uar"),
    ("regression", "regression_class_config.json", "regression_label.csv", "ccc"),
])
def test_whole_file_train_and_devel_test_agree(whole_file_example, tmp_path, prediction_type, class_config,
                                               label_file, metric):
    """Whole-file mode: the test figure `train` gives equals the one `devel-test` writes for the same model and
    files (each file's plot made from its own samples in both, never padded to the longest of its batch)."""
    from dspl.workflows.evaluate import devel_test
    from dspl.workflows.train import TrainingData, train

    hp_config = write_hp(tmp_path / "hp_config.json", prediction_type, chunk_size=[0.0], batch_size=[4])
    (result,) = train(TrainingData(whole_file_example / "audio", whole_file_example / label_file), tmp_path / "out",
                      hp_config, whole_file_example / class_config)
    trained = result.test[f"test/{metric}"] * (100.0 if metric == "uar" else 1.0)
    evaluated = devel_test(result.model_file, whole_file_example / "audio", whole_file_example / label_file)
    assert evaluated["test"]["chunks"][metric] == pytest.approx(trained, abs=1e-5)
    with (result.model_file.parent / "evaluation" / "test" / "test.chunks.predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    columns = [name for name in rows[0] if name.startswith(("prob_", "value_"))]
    scores = np.array([[float(row[name]) for name in columns] for row in rows])
    assert scores.shape == result.test_scores.shape == (3, len(columns))
    np.testing.assert_allclose(scores, result.test_scores, atol=2e-6)  # the CSV holds 6 decimals


def test_train_flags_turn_the_device_speed_ups_off(example_dir, tmp_path, monkeypatch):
    """`train --no-channels-last --no-mixed-precision` reaches the module that trains (its speed options)."""
    import dspl.workflows.train as train_workflow

    built = []

    class Recording(train_workflow.DsplModule):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(dict(self.speed_options))

    monkeypatch.setattr(train_workflow, "DsplModule", Recording)
    hp_config = write_hp(tmp_path / "hp_config.json", epochs=[1])
    result = run_train(example_dir, tmp_path, hp_config, extra=("--no-channels-last", "--no-mixed-precision"))
    assert result.exit_code == 0, result.output
    assert built == [{"channels_last": False, "mixed_precision": False}]


def test_the_progress_bar_counts_epochs_from_one_to_the_last():
    """Two epochs show as "Epoch 1/2" and "Epoch 2/2", as the resume message and the report count them."""
    from lightning.pytorch.demos.boring_classes import BoringModel

    screen = io.StringIO()
    bar = EpochProgressBar(console_kwargs={"file": screen, "force_terminal": True, "width": 120})
    trainer = L.Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[bar], logger=False,
                        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(BoringModel())
    shown = set(re.findall(r"Epoch \d+/\d+", screen.getvalue()))
    assert shown == {"Epoch 1/2", "Epoch 2/2"}
    assert "v_num" not in screen.getvalue()


def test_the_progress_bar_metrics_are_short_enough_for_one_line():
    bar = EpochProgressBar(console_kwargs={"file": io.StringIO()})
    logged = {"v_num": 3, "train/loss_step": 0.5, "train/loss_epoch": 0.6, "val/UAR": 0.7, "val/loss": 0.8}
    with patch.object(RichProgressBar, "get_metrics", return_value=logged):
        assert bar.get_metrics(None, None) == {"loss": 0.5, "val UAR": 0.7, "val loss": 0.8}


@pytest.mark.parametrize("files_per_class, batch_size", [(8, 23), (11, 4)])
def test_a_last_training_batch_of_one_chunk_trains(tmp_path, write_sine, write_labels, files_per_class, batch_size):
    from dspl.workflows.train import TrainingData, TrainOptions, train_configuration

    rows = []
    for k, label in enumerate(CLASS_DICT):
        for i in range(files_per_class):
            rows.append((f"train_{label}_{i}.wav", label, ""))
            write_sine(tmp_path / "audio" / rows[-1][0], frequency=300 * (k + 1) + 10 * i, seconds=1.0)
        rows.append((f"devel_{label}.wav", label, ""))
        write_sine(tmp_path / "audio" / rows[-1][0], frequency=300 * (k + 1), seconds=1.0)
    labels = write_labels(tmp_path / "labels.csv", rows)
    hp = tiny_config(batch_size=batch_size, epochs=1, chunk_size=1.0, chunk_hop_size=1.0)
    assert (3 * files_per_class) % batch_size == 1
    options = TrainOptions(trainer_options={"accelerator": "cpu", "enable_progress_bar": False, "callbacks": []})
    result = train_configuration(0, hp, ClassConfig.from_dict(CLASS_DICT), TrainingData(tmp_path / "audio", labels),
                                 tmp_path / "out", options)
    assert result.model_file.is_file()


def test_a_folder_of_another_configuration_is_refused_and_restart_replaces_it(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 1, [0.001]), tmp_path / "out"
    run_dir = out / "models" / "example" / "run_config_0"
    spread_model_file(run_dir / "model.h5", tiny_config(epochs=1, batch_size=8, learning_rate=0.01), CLASS_DICT)
    result = run(*train_args(example_dir, out, hp_file))
    one_error_line(result, f"{run_dir / 'model.h5'}: holds a model of another configuration (key 'learning_rate' "
                           "is 0.01 there, 0.001 in configuration 0); use another -md or tb_run_id, or --restart to "
                           "replace it")
    (out / "logs" / "example" / "run_config_0").mkdir(parents=True)
    (out / "logs" / "example" / "run_config_0" / "events.out.tfevents.old").write_text("another run")

    result = run(*train_args(example_dir, out, hp_file), "--restart")
    assert result.exit_code == 0, result.output
    assert read_checkpoint(run_dir / "model.ckpt").config.to_dict()["learning_rate"] == 0.001
    assert not (out / "logs" / "example" / "run_config_0" / "events.out.tfevents.old").exists()


def test_restart_removes_only_what_dspl_wrote_for_the_configuration(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 1, [0.001]), tmp_path / "out"
    assert run(*train_args(example_dir, out, hp_file)).exit_code == 0
    log_dir, run_dir = out / "logs" / "example" / "run_config_0", out / "models" / "example" / "run_config_0"
    (log_dir / "my_notes.txt").write_text("mine")
    (run_dir / "export").mkdir()
    (run_dir / "export" / "model.tflite").write_bytes(b"mine too")
    old_events = sorted(log_dir.glob("events.out.tfevents.*"))

    assert run(*train_args(example_dir, out, hp_file), "--restart").exit_code == 0
    assert (log_dir / "my_notes.txt").read_text() == "mine"
    assert (run_dir / "export" / "model.tflite").read_bytes() == b"mine too"
    assert not any(path.exists() for path in old_events) and list(log_dir.glob("events.out.tfevents.*"))


def test_a_second_train_into_the_same_model_dir_is_refused(example_dir, tmp_path):
    hp_file, out = grid_file(tmp_path / "hp.json", 1, [0.001]), tmp_path / "out"
    out.mkdir()
    with exclusive_lock(out / LOCK_FILE, "the test"):  # as a train running in another process holds it
        before = snapshot(out)
        result = run(*train_args(example_dir, out, hp_file))
        assert snapshot(out) == before
    one_error_line(result, f"{out}: another dspl train is running into this folder already; wait for it to finish, "
                           "then run again")
    assert leftovers(out) == [] and not (out / "models").exists()


def test_ctrl_c_during_train_says_what_was_kept_and_the_same_command_resumes(example_dir, tmp_path, monkeypatch):
    hp_file, out = grid_file(tmp_path / "hp.json", 2, [0.001]), tmp_path / "out"
    checkpoint = out / "models" / "example" / "run_config_0" / "last.ckpt"
    handler = signal.getsignal(signal.SIGINT)
    save = EpochCheckpoint.on_train_epoch_end

    def ctrl_c_after_the_checkpoint(self, trainer, module):
        save(self, trainer, module)
        raise KeyboardInterrupt  # what Python raises for SIGINT

    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", ctrl_c_after_the_checkpoint)
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 130, result.output
    assert result.output.strip().splitlines()[-1] == (
        f"error: interrupted (Ctrl-C) in configuration 0: kept its last epoch checkpoint {checkpoint}; re-run the same "
        "command to resume")
    assert "Traceback" not in result.output and signal.getsignal(signal.SIGINT) is handler
    assert read_checkpoint(checkpoint).header["epoch"] == 0 and partial_files(out) == [] and leftovers(out) == []

    monkeypatch.undo()
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 0, result.output
    assert "configuration 0: resuming after epoch 1 of" in result.output


def test_a_full_disk_during_train_is_one_line_and_keeps_what_was_there(example_dir, mounts, tmp_path):
    disk = mounts.tmpfs("disk", size="64m")
    hp_file, out = grid_file(tmp_path / "hp.json", 1, [0.001, 0.002]), disk / "out"
    assert run(*train_args(example_dir, out, grid_file(tmp_path / "one.json", 1, [0.001]))).exit_code == 0
    mounts.fill(disk)
    earlier, around = snapshot(out), outside(tmp_path, out)
    result = run(*train_args(example_dir, out, hp_file))
    assert result.exit_code == 1 and "Traceback" not in result.output and "Exception in thread" not in result.output
    line = result.output.splitlines()[-1]
    assert re.fullmatch(rf"error: {re.escape(str(out))}(/\S+)?: No space left on device", line), line
    assert outside(tmp_path, out) == around and leftovers(out) == []
    assert {name: data for name, data in snapshot(out).items() if name in earlier} == earlier


def test_only_lightnings_exit_on_ctrl_c_becomes_a_keyboard_interrupt_again():
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), interrupts_raised():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:  # what Lightning does with it
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            sys.exit(1)
    assert signal.getsignal(signal.SIGINT) is handler
    with pytest.raises(SystemExit), interrupts_raised():
        sys.exit(2)
