"""`benchmark` (dspl.workflows.benchmark): size, latency and accuracy of every exported TFLite variant of one
model, side by side (slow: the module exports a model first)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers import CLASS_DICT, tiny_config

from dspl.cli.main import cli
from dspl.config import ClassConfig
from dspl.data.example import write_example_data
from dspl.export.exporter import ExportOptions
from dspl.models import create_model
from dspl.models.modelfile import save_model_file
from dspl.workflows.benchmark import benchmark
from dspl.workflows.export import export_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """An untrained tiny model, its fp32 plots-in and end-to-end exports, and the example set."""
    root = tmp_path_factory.mktemp("benchmark")
    data = write_example_data(root / "data", files_per_class=2, seed=4)
    hp, classes = tiny_config(), ClassConfig.from_dict(CLASS_DICT)
    torch.manual_seed(0)
    model = create_model(hp.model, classes.num_classes, in_chans=hp.spec.input_channels, pretrained=False).eval()
    model_file = save_model_file(root / "model.h5", model, hp, classes)
    export_model(model_file, root / "exported", ExportOptions(formats=("tflite",), quantize=("fp32",), end_to_end=True))
    return model_file, root / "exported", data


def test_every_variant_is_measured_and_scored_like_the_pytorch_model(exported):
    model_file, export_dir, data = exported
    result = benchmark(model_file, export_dir, data / "audio", data / "label.csv", runs=3)
    assert set(result["variants"]) == {"fp32", "end_to_end_fp32"}
    assert result["metric"] == "accuracy" and result["partition"] == "test" and result["chunks"] > 0
    assert result["reference"] == "pytorch"
    for row in result["variants"].values():
        assert row["size_bytes"] > 0 and row["latency"]["runs"] == 3
        assert 0 < row["latency"]["min_ms"] <= row["latency"]["median_ms"] <= row["latency"]["p90_ms"]
        # float variants reproduce the PyTorch model, so they score what it scores
        assert row["agreement_with_pytorch"] == 1.0
        assert row["quality"] == pytest.approx(result["pytorch"])


def test_cli_json_without_labels_and_its_errors(exported):
    model_file, export_dir, data = exported
    runner = CliRunner()
    result = runner.invoke(cli, ["benchmark", "-s", str(model_file), "-e", str(export_dir), "--runs", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["variants"]
    assert set(rows) == {"fp32", "end_to_end_fp32"} and "quality" not in rows["fp32"]
    result = runner.invoke(cli, ["benchmark", "-s", str(model_file), "-e", str(export_dir), "-d", str(data / "audio")])
    assert result.exit_code == 1 and "-d and -l go together" in result.output
    result = runner.invoke(cli, ["benchmark", "-s", str(model_file), "-e", str(data)])
    assert result.exit_code == 1 and "no .tflite files" in result.output


@pytest.mark.parametrize("metric, quality, shown, pytorch_line", [
    ("accuracy", 0.9655, "96.55", "PyTorch model: accuracy 96.55 % on 29 chunks of the test partition"),
    ("mae", 0.1234, "0.1234", "PyTorch model: mae 0.1234 on 29 chunks of the test partition"),
])
def test_the_table_shows_shares_in_percent_as_the_terminal_does_elsewhere(capsys, monkeypatch, metric, quality, shown,
                                                                           pytorch_line):
    """In a log (not a terminal) the table is as wide as its cells, so the variants' whole names show."""
    from dspl.workflows.benchmark import print_benchmark

    monkeypatch.delenv("COLUMNS", raising=False)
    agreement = 0.998 if metric == "accuracy" else None
    row = {"size_bytes": 2e6, "latency": {"median_ms": 1.0, "p90_ms": 2.0, "runs": 50, "warmup": 5, "threads": 2},
           "quality": quality, "agreement_with_pytorch": agreement}
    print_benchmark({"model": "m.h5", "metric": metric, "reference": "pytorch", "variants": {"end_to_end_fp16": row},
                     "pytorch": quality, "chunks": 29, "partition": "test"})
    output = capsys.readouterr().out
    cells = [cell.strip() for line in output.splitlines() if "fp16" in line for cell in line.split("│")]
    assert cells[1:-1] == ["end_to_end_fp16", "2.00", "1.00", "2.00", shown, "99.8" if agreement else "-"]
    assert (f"{metric} (%)" in output) == (metric == "accuracy")
    assert output.splitlines()[-2:] == [
        "latency: 50 invokes of each variant after 5 warm-up invokes, interleaved, on 2 thread(s)", pytorch_line]
