"""`dspl report`: the page's content matches the run's files, and headless Chromium renders it with every image
(helpers.render)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from helpers import render, second_record_data, without_blocking
from PIL import Image

from dspl.cli.main import cli
from dspl.report.curves import read_scalars
from dspl.workflows.report import run_log_dir
from dspl.workflows.search_summary import Budget, SearchInfo


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
    assert "No export_report.json" in page and "Damaged log:" not in page


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


def test_report_names_a_damaged_tflite_and_times_the_others(trained_model: Path, tmp_path: Path):
    """A truncated .tflite in an export folder is named on the page; the intact one beside it is still timed."""
    from dspl.export.preprocessor import create_preprocessor
    from dspl.loading import load_model_file

    model = copied_model(trained_model, tmp_path)
    exported = tmp_path / "exported"
    intact = create_preprocessor(load_model_file(model).config.spec, exported / "model_fp32.tflite")
    damaged = exported / "model_int8.tflite"
    damaged.write_bytes(intact.read_bytes()[:len(intact.read_bytes()) // 2])
    (exported / "export_report.json").write_text(json.dumps({"inputs": "synthetic tones", "steps": {}}))
    page = report_page(model)
    assert re.search(rf"Not shown: {re.escape(str(damaged))}: [^<]+</p>", page)
    assert re.search(r'<td>model_int8.tflite</td><td class="num">[\d.]+</td><td>–</td>', page)
    assert re.search(r'<td>model_fp32.tflite</td><td class="num">[\d.]+</td><td class="num">[\d.]+</td>', page)


def report_page(model: Path, special: Path | None = None) -> str:
    """The page `dspl report -md model` writes (its text, unescaped), the command having succeeded; with a FIFO
    ``special`` beside the model, the test fails if the report waits on it."""
    args = ["report", "-md", str(model)]
    result = without_blocking(special, CliRunner().invoke, cli, args) if special else CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return html.unescape((model.parent / "report" / "index.html").read_text(encoding="utf-8"))


def copied_model(trained_model: Path, folder: Path) -> Path:
    """The trained model file alone in ``folder`` (its log dir: ``folder`` itself)."""
    model = folder / "model.h5"
    shutil.copy(trained_model, model)
    return model


def search_summary(folder: Path, summary: dict[str, Any] | None = None) -> Path:
    """The search marker beside a model pointing at ``folder``/search (``summary``: the marker's content instead),
    whose search.json is a real one; returns the summary folder."""
    (folder / "search").mkdir()
    info = SearchInfo("study", "sqlite:///study.db", "uar", Budget(), "fp32", 1, searched=[])
    (folder / "search" / "search.json").write_bytes(info.to_json())
    (folder / "search_trial.json").write_text(json.dumps(summary or {"trial": 0, "summary": "search"}))
    return folder / "search"


def refused(fifo: Path, what: str) -> str:
    """The page's note for a FIFO found where the report reads a file of this kind."""
    return f"Not shown: {fifo}: is a named pipe (FIFO), expected a regular file ({what})"


def fifo_export_report(folder: Path) -> tuple[Path, str]:
    (folder / "export").mkdir()
    fifo = folder / "export" / "export_report.json"
    return fifo, refused(fifo, "export report")


def fifo_tflite(folder: Path) -> tuple[Path, str]:
    (folder / "export").mkdir()
    (folder / "export" / "export_report.json").write_text(json.dumps({"inputs": "synthetic tones", "steps": {}}))
    return folder / "export" / "extra.tflite", f"{folder / 'export'} (verified on synthetic tones)"


def fifo_events(folder: Path) -> tuple[Path, str]:
    return folder / "events.out.tfevents.1.fifo", '<img src="curves.png"'


def fifo_trials(folder: Path) -> tuple[Path, str]:
    fifo = search_summary(folder) / "trials.csv"
    return fifo, refused(fifo, "search summary")


def fifo_marker(folder: Path) -> tuple[Path, str]:
    fifo = folder / "search_trial.json"
    return fifo, refused(fifo, "search marker")


def fifo_metrics(folder: Path) -> tuple[Path, str]:
    (folder / "evaluation" / "devel").mkdir(parents=True)
    fifo = folder / "evaluation" / "devel" / "devel.chunks.metrics.json"
    return fifo, refused(fifo, "metrics file")


@pytest.mark.parametrize("place", [fifo_export_report, fifo_tflite, fifo_events, fifo_trials, fifo_marker,
                                   fifo_metrics])
def test_report_never_opens_a_named_pipe_it_finds(trained_model: Path, tmp_path: Path,
                                                  place: Callable[[Path], tuple[Path, str]]):
    """A FIFO where the report looks for a file (which it would wait on forever) is named on the page as what it
    is, or, among globbed files (.tflite, event files), left out; the rest of the page is written."""
    model = copied_model(trained_model, tmp_path)
    for events in run_log_dir(trained_model).glob("events.out.tfevents.*"):
        shutil.copy(events, tmp_path)
    fifo, shown = place(tmp_path)
    os.mkfifo(fifo)
    page = report_page(model, fifo)
    assert shown in page
    assert page.count(fifo.name) == page.count(f"Not shown: {fifo}")  # named only as refused
    assert '<img src="curves.png"' in page  # the real event files are read beside the FIFO


def test_report_names_an_unreadable_export_report_and_shows_the_rest(trained_model: Path, tmp_path: Path):
    model = copied_model(trained_model, tmp_path)
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "export_report.json").write_text("{not json")
    page = report_page(model)
    assert (f"Not shown: {tmp_path / 'export' / 'export_report.json'}: not an export report written by dspl export "
            "(content: malformed JSON at line 1, column 2: Expecting property name") in page
    assert "No export_report.json" not in page and "Evaluation (devel-test)" in page


METRICS = {"uar": 50.0, "accuracy": 60.0, "f1_macro": 40.0, "cm": [[2, 0, 0], [1, 1, 0], [0, 0, 2]]}
PREDICTIONS = "filename,time,prob_low,prob_high,prob_noise,prediction,label\n" \
              "devel_001.wav,0.000,0.3,0.3,0.4,noise,noise\n"
JSON_FILE, CSV_FILE = "devel.chunks.metrics.json", "devel.chunks.predictions.csv"


@pytest.mark.parametrize("name, content, problem", [
    (JSON_FILE, b"{not json", "malformed JSON at line 1, column 2: Expecting property name enclosed in double quotes"),
    (JSON_FILE, b"\xff\xfe\x00\x93 random bytes", "not valid JSON: not UTF-16-LE text (truncated data)"),
    (JSON_FILE, [1, 2], "expected a JSON object of metrics, found list"),
    (JSON_FILE, {k: v for k, v in METRICS.items() if k != "uar"}, "'uar' is null, expected a finite number"),
    (JSON_FILE, {**METRICS, "uar": "high"}, '\'uar\' is "high", expected a finite number'),
    (JSON_FILE, {**METRICS, "uar": float("nan")}, "'uar' is NaN, expected a finite number"),
    (JSON_FILE, b"[" * 100000 + b"]" * 100000, "not valid JSON: arrays and objects nested 100000 levels deep, "
                                               "expected at most 100"),
    (JSON_FILE, {**METRICS, "cm": "x"}, "'cm' is not a matrix of numbers, expected a 3x3 matrix of counts (a row "
                                        "and a column per class of the model)"),
    (JSON_FILE, {**METRICS, "cm": [[1, 0], [0, 1]]}, "'cm' is a 2x2 matrix, expected a 3x3 matrix of counts"),
    (JSON_FILE, {**METRICS, "cm": [[1, 0, 0], [0, float("nan"), 0], [0, 0, 1]]}, "'cm' holds NaN, negative or "
                                                                                  "fractional values"),
    (CSV_FILE, b"filename,label\na.wav,low\n", "no column prediction, prob_low, prob_high, prob_noise"),
    (CSV_FILE, PREDICTIONS.replace("0.4", "abc").encode(), "line 2: not a number (could not convert string to "
                                                           "float: 'abc')"),
    (CSV_FILE, PREDICTIONS.replace("0.4", "inf").encode(), "line 2: a score is not a finite number"),
    (CSV_FILE, PREDICTIONS.replace("noise\n", "zzz\n").encode(), "line 2: label 'zzz' is not one of the model's "
                                                                   "classes (low, high, noise)"),
    (CSV_FILE, PREDICTIONS.encode() + b"\xff\xfe\x00\x93\n", "not a predictions file of devel-test ('utf-8' "
                                                                "codec can't decode byte 0xff"),
])
def test_report_names_a_damaged_evaluation_file_and_shows_the_rest(trained_model: Path, tmp_path: Path, name: str,
                                                                   content: Any, problem: str):
    """A hand-edited devel-test file is named on the page with what is wrong with it; the test partition's
    intact files are still shown."""
    model = copied_model(trained_model, tmp_path)
    for partition in ("devel", "test"):
        folder = tmp_path / "evaluation" / partition
        folder.mkdir(parents=True)
        (folder / f"{partition}.chunks.metrics.json").write_text(json.dumps(METRICS))
        (folder / f"{partition}.chunks.predictions.csv").write_text(PREDICTIONS)
    damaged = tmp_path / "evaluation" / "devel" / name
    damaged.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    page = report_page(model)
    assert f"Not shown: {damaged}: {problem}" in page
    assert "test (chunks): UAR 50.00 %, accuracy 60.00 %, macro F1 40.00 %" in page
    assert page.count("least confident files") == (1 if name == CSV_FILE else 2)


@pytest.mark.parametrize("marker", [[1], {"trial": 0, "summary": 5}, {"summary": "search"}])
def test_report_names_an_edited_search_marker(trained_model: Path, tmp_path: Path, marker: Any):
    model = copied_model(trained_model, tmp_path)
    search_summary(tmp_path, marker)
    page = report_page(model)
    assert (f'Not shown: {tmp_path / "search_trial.json"}: expected {{"trial": <number>, "summary": "<folder>"}}, '
            f"found {json.dumps(marker)}") in page


@pytest.mark.parametrize("damage, problem", [
    (lambda data, at: data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:], "failed event crc32 check"),
    (lambda data, at: data[:at], "has truncated record in data"),
])
def test_report_names_a_damaged_event_file_and_shows_what_precedes_it(
        trained_model: Path, tmp_path: Path, damage: Callable[[bytes, int], bytes], problem: str):
    """TensorBoard's reader stops at a damaged record without a word: the page says which file and record, and
    still shows the curves and metrics of the records before it."""
    model = copied_model(trained_model, tmp_path)
    for events in run_log_dir(trained_model).glob("events.out.tfevents.*"):
        shutil.copy(events, tmp_path)
    damaged = sorted(tmp_path.glob("events.out.tfevents.*"))[0]
    intact_points = sum(map(len, read_scalars(tmp_path).values()))
    data = damaged.read_bytes()
    damaged.write_bytes(damage(data, second_record_data(data)))
    page = report_page(model)
    assert (f"Damaged log: {damaged}: record 2 is damaged ({problem}); the curves lack it and what follows"
            in page)
    assert page.count("Damaged log:") == 1 and "test metric (chunks, end of training)" in page
    assert sum(map(len, read_scalars(tmp_path).values())) < intact_points  # what TensorBoard silently skips


def test_least_confident_files_show_the_file_decision_devel_test_made(trained_model: Path, tmp_path: Path):
    """A tie of chunk votes goes to the tied class with the higher mean score, as devel-test's grouped decision:
    the table says the same, whichever chunk comes first."""
    model = copied_model(trained_model, tmp_path)
    folder = tmp_path / "evaluation" / "test"
    folder.mkdir(parents=True)
    (folder / "test.chunks.predictions.csv").write_text(
        "filename,time,prob_low,prob_high,prob_noise,prediction,label\n"
        "a.wav,0.000,0.500,0.100,0.400,low,noise\n"   # low first, noise's mean is higher: noise
        "a.wav,0.500,0.050,0.150,0.800,noise,noise\n"
        "b.wav,0.000,0.100,0.450,0.450,high,low\n"     # high first, low's mean is higher: low
        "b.wav,0.500,0.700,0.200,0.100,low,low\n", encoding="utf-8")
    page = report_page(model)
    assert re.search(r"<td>a\.wav</td><td>noise</td><td class=\"num\">[\d.]+</td><td>noise</td>", page)
    assert re.search(r"<td>b\.wav</td><td>low</td><td class=\"num\">[\d.]+</td><td>low</td>", page)
    assert "file decision (majority vote)" in page
