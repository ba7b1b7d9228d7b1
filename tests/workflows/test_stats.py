"""`stats` (dspl.workflows.stats): parameters, FLOPs by hand, layers and latency of a trained model."""

import json
import re
import shutil

import torch
from helpers import run

import dspl


def test_stats_reports_parameters_flops_and_layers(trained_model):
    result = run("stats", "-md", str(trained_model), "--json", "--runs", "2")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    model = dspl.load_model(trained_model).model
    assert stats["params_total"] == sum(p.numel() for p in model.parameters())
    # FLOPs by hand: 2 · MACs of every convolution and linear layer (the only operators that count)
    x = torch.zeros(stats["input_shape"])
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs.append(output.numel() * module.in_channels // module.groups * kh * kw)
        elif isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    assert stats["input_shape"] == [1, 3, 32, 32]
    # the stem: a 3×3 convolution, stride 2, 3 -> 24 channels on 32×32: 24·16·16 outputs × 3·3·3 MACs each
    assert macs[0] == 24 * 16 * 16 * 27 == 165_888
    assert stats["macs"] == sum(macs) and stats["flops"] == 2 * sum(macs)
    assert stats["file_size_bytes"] == trained_model.stat().st_size
    assert sum(row["params"] for row in stats["layers"]) == stats["params_total"]
    assert 0 < stats["latency"]["min_ms"] <= stats["latency"]["median_ms"] <= stats["latency"]["p90_ms"]
    table = run("stats", "-d", str(trained_model), "--runs", "2")  # DeepSpectrumLite's README spelling
    assert table.exit_code == 0 and "FLOPs" in table.output


def test_stats_prints_a_summary_and_the_layer_table_only_with_v(trained_model):
    summary = run("stats", "-md", str(trained_model.parent), "--runs", "2")
    assert summary.exit_code == 0, summary.output
    lines = summary.output.splitlines()
    assert lines[0] == f"model: {trained_model}"  # the folder's model.h5, named
    assert re.fullmatch(rf"test_efficientnet: {re.escape(str(trained_model))} \(\d+ layers: -v lists them\)", lines[1])
    assert len(lines) == 6 and "FLOPs" in summary.output
    table = run("stats", "-md", str(trained_model), "--runs", "2", "-v")  # -v after the command name
    assert table.exit_code == 0, table.output
    stats = json.loads(run("stats", "-md", str(trained_model), "--runs", "2", "--json").output)
    assert "-v lists them" not in table.output
    rows = [line for line in table.output.splitlines() if line.startswith("│")]
    assert len(rows) == len(stats["layers"])  # one row per layer (the header line starts with ┃)


def test_a_path_is_printed_whole_and_as_it_is(trained_model, tmp_path):
    """Brackets in a folder name are text, not rich markup (`[/x]` crashed the printing, `[red]` vanished), and a
    path longer than the terminal stays on one line."""
    folder = tmp_path / ("[red]b[/x]" + "_long" * 20)  # the folders "[red]b[" and "x]_long_long..."
    folder.mkdir(parents=True)
    model = folder / "model.h5"
    shutil.copy(trained_model, model)
    result = run("stats", "-md", str(model), "--runs", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(f"test_efficientnet: {model} (")
    parameters = json.loads(run("stats", "-md", str(model), "--runs", "2", "--json").output)["params_total"]
    assert f"parameters {parameters:,} " in result.output  # the lines after it, as they were
    assert re.search(r"CPU latency per forward pass: median [\d.]+ ms, .* on [12] thread\(s\)$", result.output,
                     re.MULTILINE)
