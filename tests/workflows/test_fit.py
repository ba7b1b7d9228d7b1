"""`dspl fit`: LightningCLI with the example YAML, --print_config, Trainer flags, and DDP over 2 CPU processes."""

import json
import re
import subprocess
import sys

import pytest
import yaml
from lightning.pytorch.utilities.model_summary import ModelSummary
from click.testing import CliRunner
from helpers import ROOT, TINY, one_error_line, snapshot

from dspl.cli.fit import GROUP_OPTIONS, TOP_LEVEL_OPTIONS
from dspl.cli.main import cli
from dspl.files import exclusive_lock
from dspl.workflows.fit import DESCRIPTION, LOCK_FILE, FitModule
from dspl.data.example import example_hp
from dspl.loading import load_model_file

FIT_EXAMPLE = ROOT / "configs" / "fit_example.yaml"


def fit_args(example_dir, tmp_path, *extra):
    """`dspl fit` arguments: the example YAML with a tiny one-epoch hp config and the example data."""
    hp_config = tmp_path / "hp_config.json"
    hp_config.write_text(json.dumps({k: [v] for k, v in {**example_hp(), **TINY, "epochs": 1}.items()}),
                         encoding="utf-8")
    return ["fit", "--config", str(FIT_EXAMPLE), "--model.hp_config", str(hp_config),
            "--model.class_config", str(example_dir / "class_config.json"),
            "--data.data_dir", str(example_dir / "audio"), "--data.label_file", str(example_dir / "label.csv"),
            "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.accelerator", "cpu", *extra]


def test_print_config_shows_the_resolved_configuration(example_dir, tmp_path):
    result = CliRunner().invoke(cli, fit_args(example_dir, tmp_path, "--trainer.precision", "bf16-mixed",
                                              "--print_config"))
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.output)
    assert config["model"]["hp_config"] == str(tmp_path / "hp_config.json")
    assert config["data"]["label_file"] == str(example_dir / "label.csv")
    assert config["trainer"]["precision"] == "bf16-mixed" and config["trainer"]["max_epochs"] is None


def test_help_describes_the_model_and_data_arguments():
    result = CliRunner().invoke(cli, ["fit", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for description in ("DeepSpectrumLite hp config", "JSON object mapping class labels to names",
                        "which configuration of the grid to train", "DataLoader worker processes"):
        assert description in text
    # the groups `dspl fit` checks options against before lightning loads are the parser's
    options = text.replace(DESCRIPTION, "")  # which names dspl's own options, not the parser's
    assert set(re.findall(r"(?:^|[\s\[])--([a-z_]+)", options)) == set(TOP_LEVEL_OPTIONS)
    assert set(re.findall(r"(?:^|[\s\[])--([a-z_]+\.[a-z_]+)", options)) == {
        f"{group}.{option}" for group, options in GROUP_OPTIONS.items() for option in options}


@pytest.mark.slow
def test_fit_trains_under_ddp_with_two_cpu_processes(example_dir, tmp_path):
    args = fit_args(example_dir, tmp_path, "--trainer.devices", "2", "--trainer.strategy", "ddp",
                    "--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]",
                    "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1")
    run = subprocess.run([sys.executable, "-m", "dspl", "-v", *args], capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Starting with 2 processes" in run.stderr + run.stdout
    version = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert run.stdout.splitlines().count(f"model: {version / 'model.h5'}") == 1  # said by rank 0 alone
    loaded = load_model_file(version / "model.h5")
    assert loaded.config.model.basemodel_name == "test_efficientnet" and loaded.classes.num_classes == 3
    config = yaml.safe_load((version / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 1 and config["seed_everything"] == 42
    assert list((version / "checkpoints").glob("*.ckpt"))


@pytest.mark.parametrize("make_args, expected", [
    (lambda tmp_path: ["--config", str(tmp_path / "missing.yaml")], "missing.yaml"),
    (lambda tmp_path: ["--config", str(FIT_EXAMPLE), "--trainer.max_epochs", "many"], "max_epochs"),
    (lambda tmp_path: ["--config", str(_broken_yaml(tmp_path))], "Problems parsing config"),
])
def test_usage_errors_are_one_line_with_status_1(tmp_path, make_args, expected):
    result = CliRunner().invoke(cli, ["fit", *make_args(tmp_path)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dspl fit: ") and expected in lines[0], result.output
    assert lines[0].endswith("(see 'dspl fit -h')") and "usage:" not in result.output


def _broken_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: [unclosed\n  trainer: {\n")
    return path


def test_trainer_flags_that_contradict_are_one_line(example_dir, tmp_path):
    """Lightning refuses them when it builds the Trainer: the example YAML's progress bar without a bar."""
    result = CliRunner().invoke(cli, fit_args(example_dir, tmp_path, "--trainer.enable_progress_bar", "false"))
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        "error: dspl fit: Trainer was configured with `enable_progress_bar=False` but found `EpochProgressBar` in "
        "callbacks list. (see 'dspl fit -h')"], result.output


def test_the_model_summary_counts_the_flops_of_one_plot(example_dir, tmp_path):
    """Lightning's summary at the start of `dspl fit` runs the model on one plot of the configuration's shape (not
    "Total FLOPs: 0")."""
    hp_config = fit_args(example_dir, tmp_path)[4]
    module = FitModule(str(example_dir / "class_config.json"), hp_config=hp_config)
    summary = ModelSummary(module)
    assert tuple(module.example_input_array.shape) == (1, *module.config.spec.input_shape())
    assert summary.total_flops > 0 and summary.in_sizes[summary.layer_names.index("model")] == \
        [1, *module.config.spec.input_shape()]


def test_a_second_fit_into_the_same_folder_is_refused(example_dir, tmp_path):
    """Two fits that chose one log folder at once (Lightning numbers versions by the folders it finds) would mix
    their events and checkpoints: the second stops. Without a logger the folder is the root dir itself."""
    runs = tmp_path / "runs"
    runs.mkdir()
    with exclusive_lock(runs / LOCK_FILE, "the test"):  # as a fit running in another process holds it
        before = snapshot(runs)
        result = CliRunner().invoke(cli, fit_args(example_dir, tmp_path, "--trainer.logger", "false"))
        assert snapshot(runs) == before
    one_error_line(result, f"{runs}: another dspl fit is running into this folder already; wait for it to "
                           "finish, then run again")


def test_a_damaged_checkpoint_to_resume_from_is_one_line_before_any_output(example_dir, tmp_path, trained_model):
    checkpoint = tmp_path / "cut.ckpt"
    data = (trained_model.parent / "model.ckpt").read_bytes()
    checkpoint.write_bytes(data[:len(data) // 2])
    result = CliRunner().invoke(cli, fit_args(example_dir, tmp_path, "--ckpt_path", str(checkpoint)))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1].startswith(
        f"error: {checkpoint}: not a Lightning checkpoint (or truncated): ")
    assert not (tmp_path / "runs" / "lightning_logs").exists()
