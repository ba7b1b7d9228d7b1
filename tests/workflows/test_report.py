"""`dspl report`: the page's content matches the run's files, and headless Chromium renders it with every image
(helpers.render)."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import render
from PIL import Image

from dspl.cli.main import cli
from dspl.report.curves import read_scalars
from dspl.workflows.report import run_log_dir


@pytest.fixture(scope="module")
def evaluated_model(trained_model: Path, example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the trained model's output folder (model, logs) after `devel-test` (which writes the report)
    and `report`."""
    root = tmp_path_factory.mktemp("report") / "out"
    shutil.copytree(trained_model.parents[3], root)
    model = root / trained_model.relative_to(trained_model.parents[3])
    shutil.rmtree(model.parent / "report", ignore_errors=True)
    arguments = ["-md", str(model), "-d", str(example_dir / "audio"), "-l", str(example_dir / "label.csv")]
    result = CliRunner().invoke(cli, ["devel-test", *arguments])
    assert result.exit_code == 0, result.output
    assert "least confident files" in (model.parent / "report" / "index.html").read_text(encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", *arguments])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(model.parent / "report" / "index.html")
    return model


def test_report_holds_config_data_curves_metrics_and_examples(evaluated_model: Path, example_dir: Path):
    page = (evaluated_model.parent / "report" / "index.html").read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert "test_efficientnet, 3 classes" in page
    # files per partition and class of the example set (3 training files per class, 1 devel and 1 test)
    assert re.search(r"<td>low \(Low tone\)</td><td class=\"num\">3</td><td class=\"num\">1</td>"
                     r"<td class=\"num\">1</td>", page)
    # the confusion matrices are devel-test's, with each class's recall
    for partition in ("devel", "test"):
        metrics = json.loads((evaluated_model.parent / "evaluation" / partition /
                              f"{partition}.chunks.metrics.json").read_text())
        assert f"{partition} (chunks): UAR {metrics['uar']:.2f} %" in page
        first_row = "".join(f'<td class="num">{n}</td>' for n in metrics["cm"][0])
        assert f"<td>low</td>{first_row}" in page
    assert page.count("least confident files") == 2
    # the test metrics at the end of training: shares in percent, as the terminal and the evaluation show them
    test_uar = read_scalars(run_log_dir(evaluated_model))["test/uar"][-1][1]
    assert f'<td>uar (%)</td><td class="num">{100 * test_uar:.4g}</td>' in page
    assert re.search(r'<td>loss</td><td class="num">[\d.e-]+</td>', page)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources == ["curves.png", "example_0.png", "example_1.png", "example_2.png"]
    for source in sources:
        with Image.open(evaluated_model.parent / "report" / source) as image:
            assert image.size[0] > 200 and image.size[1] > 150
    assert "No export_report.json" in page


def test_report_renders_in_headless_chromium_with_every_image(evaluated_model: Path, tmp_path: Path):
    page = evaluated_model.parent / "report" / "index.html"
    images, shot = render(page, tmp_path / "profile")
    assert [src for src, _, _ in images] == ["curves.png", "example_0.png", "example_1.png", "example_2.png"]
    assert all(complete and width > 0 for _, complete, width in images), images
    (tmp_path / "shot.png").write_bytes(shot)
    with Image.open(tmp_path / "shot.png") as screenshot:
        assert screenshot.size[0] == 1100 and screenshot.size[1] > 1400  # the whole page, taller than the window


def test_report_without_data_names_what_is_missing(trained_model: Path, tmp_path: Path):
    model = tmp_path / "model.h5"
    shutil.copy(trained_model, model)
    result = CliRunner().invoke(cli, ["report", "-md", str(model)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert "Pass -d DATA -l LABELS" in page and "run `dspl devel-test" in page
    assert "No TensorBoard logs in" in page and "<img" not in page



@pytest.mark.parametrize("budget_seconds, method, shows", [
    (20.0, "occlusion", "where silencing a patch lowers the predicted class's score most"),
    (0.0, "gradcam", "the feature map regions whose gradients raise the predicted class's score"),
])
def test_report_examples_take_a_cheaper_method_when_the_sharpest_would_exceed_the_budget(
        trained_model: Path, example_dir: Path, tmp_path: Path, monkeypatch, budget_seconds, method, shows):
    """Occlusion (about 50 forward passes per plot here) fits 20 s; with no time to spare Grad-CAM (3) is taken."""
    monkeypatch.setattr("dspl.workflows.report.EXAMPLE_BUDGET_SECONDS", budget_seconds)
    model = tmp_path / "model.h5"
    shutil.copy(trained_model, model)
    result = CliRunner().invoke(cli, ["report", "-md", str(model), "-d", str(example_dir / "audio")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert captions and all(caption.endswith(f": {method} map of its first chunk") for caption in captions)
    assert html.escape(shows) in page

def test_report_lists_exported_variants_with_size_latency_and_agreement(trained_model: Path, tmp_path: Path):
    """An export beside the model (here a TFLite file and its report, as `dspl export` writes them) is listed."""
    from dspl.export.preprocessor import create_preprocessor
    from dspl.loading import load_model_file

    model = tmp_path / "model.h5"
    shutil.copy(trained_model, model)
    exported = tmp_path / "exported"
    tflite = create_preprocessor(load_model_file(model).config.spec, exported / "model_fp32.tflite")
    steps = {"tflite_fp32": {"check": 1.5e-07, "max_abs_diff": 1.5e-07}}
    (exported / "export_report.json").write_text(json.dumps({"inputs": "synthetic tones", "steps": steps}))
    result = CliRunner().invoke(cli, ["report", "-md", str(model)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    row = re.search(r"<td>model_fp32.tflite</td><td class=\"num\">([\d.]+)</td><td class=\"num\">([\d.]+)</td>", page)
    assert row, page[page.find("model_fp32"):][:400]
    assert float(row.group(1)) == pytest.approx(tflite.stat().st_size / 1e3, rel=1e-2) and float(row.group(2)) > 0
    assert re.search(r"<td>model_fp32.tflite</td>(<td[^>]*>[^<]*</td>){2}<td>SavedModel</td><td>–</td>"
                     r"<td class=\"num\">1.5e-07</td>", page), page[page.find("model_fp32"):][:400]
    assert re.search(r"Latency: TFLite interpreter on this machine, [12] thread\(s\), median of 20 invokes after 5 "
                     r"warm-up invokes, interleaved across the files[;.]", page)
    assert "No export_report.json" not in page
