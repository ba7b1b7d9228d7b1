"""`dspl explain`: sanity checks that make the maps trustworthy, the plot axes in seconds and hertz, the outputs.

The sanity checks use a model trained on the example set, whose classes differ by frequency band ("low" tones
at 150-400 Hz with harmonics up to about 2 kHz, "high" tones at 1.5-3 kHz with one harmonic up to 6 kHz):
its maps must sit in the band of the class they explain, differ from a randomised-weights model's maps
(Adebayo et al., 2018, "Sanity checks for saliency maps") and be the same run after run.

Measured on this model (mean band share against the band's share of the plot area; mean rank correlation with
the randomised model's maps): occlusion low 0.60 / 0.35, high 0.96 / 0.61, correlation 0.01 and 0.21;
Grad-CAM on the 8 x 8 stage (see ``gradcam_layer``) low 0.58, high 0.69, correlation 0.37 and 0.40 - on the
backbone's last, 2 x 2 map it failed both tests (0.44 and 0.39 in band, correlation 0.92 for high tones);
integrated gradients passes the randomisation test but puts most of a low tone's attribution above 1 kHz
(the dark upper band is evidence for "low" too), so it is not held to the band test.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import build_config, untrained_model
from PIL import Image
from scipy.stats import spearmanr

from dspl.cli.main import cli
from dspl.data.audio import load_audio
from dspl.data.example import write_example_data
from dspl.explain import METHODS, attribute, band_share, plot_axes, top_regions
from dspl.explain.attribution import gradcam_layer
from dspl.explain.geometry import hertz_ticks
from dspl.loading import load_model
from dspl.models.predictor import Predictor
from dspl.spec import PreprocessingSpec, hertz_to_mel
from dspl.workflows.explain import explain_waveform
from dspl.workflows.train import TrainingData, train

# where each tone class has its energy, and the rest of the plot
BANDS = {"low": (0.0, 1000.0), "high": (1200.0, 8000.0)}


@pytest.fixture(scope="module")
def band_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model.h5, example dir): test_efficientnet on 64x64 plots, 6 files per class, 4 epochs (about 15 s)."""
    data = write_example_data(tmp_path_factory.mktemp("band_data"), files_per_class=6, seed=0)
    grid = json.loads((data / "hp_config.json").read_text())
    grid.update(basemodel_name=["test_efficientnet"], epochs=[4], batch_size=[8], num_units=[8],
                augment_cutmix=[False], augment_specaug=[False])
    hp_file = data / "band_hp.json"
    hp_file.write_text(json.dumps(grid))
    out = tmp_path_factory.mktemp("band_model")
    result = train(TrainingData(data / "audio", data / "label.csv"), out, hp_file, data / "class_config.json")[0]
    assert result.test["test/uar"] >= 0.8
    return result.model_file, data


def _test_files(data: Path, label: str) -> list[Path]:
    rows = csv.DictReader((data / "label.csv").open())
    return [data / "audio" / r["filename"] for r in rows if r["filename"].startswith("test") and r["label"] == label]


def _maps(predictor: Predictor, data: Path, label: str, method: str, seed: int = 0) -> list:
    """The chunk explanations of the class's test files for that class's score."""
    return [chunk for path in _test_files(data, label)
            for chunk in explain_waveform(predictor, load_audio(path, 16000), method, target=label, seed=seed)]


@pytest.mark.parametrize("label", ["low", "high"])
@pytest.mark.parametrize(("method", "margin"), [("occlusion", 0.15), ("gradcam", 0.05)])
def test_maps_sit_in_the_band_of_the_class(band_model, label, method, margin):
    """Most of the attribution lies in the class's own band: over half of it, and more than that band's share
    of the plot's area by ``margin`` (Grad-CAM's map, upsampled from 8 x 8 cells, spills over the band edge)."""
    model_file, data = band_model
    chunks = _maps(load_model(model_file), data, label, method)
    low, high = BANDS[label]
    shares = [band_share(c.attribution, c.axes, low, high) for c in chunks]
    area = band_share(np.ones_like(chunks[0].attribution), chunks[0].axes, low, high)
    assert np.mean(shares) > 0.5
    assert np.mean(shares) > area + margin, (np.mean(shares), area)


@pytest.mark.parametrize("method", METHODS)
def test_randomised_weights_change_the_maps(band_model, method):
    """Adebayo et al.'s model randomisation test: a model with the same architecture and fresh random weights
    gives maps unlike the trained model's (rank correlation of each chunk's map pair well below 1)."""
    model_file, data = band_model
    trained = load_model(model_file)
    randomised = load_model(model_file)
    torch.manual_seed(123)
    randomised.model = untrained_model(trained.config, trained.classes.num_classes)
    for label in BANDS:
        first = _maps(trained, data, label, method)
        second = _maps(randomised, data, label, method)
        correlations = [spearmanr(a.attribution.ravel(), b.attribution.ravel()).statistic
                        for a, b in zip(first, second)]
        # a constant map (Grad-CAM of a random model may be all zero) has no rank correlation: it differs
        similarity = np.nan_to_num(np.asarray(correlations), nan=0.0)
        assert np.mean(similarity) < 0.5, (label, correlations)
        assert not np.allclose(first[0].attribution, second[0].attribution)


@pytest.mark.parametrize("method", METHODS)
def test_maps_are_deterministic_for_a_fixed_seed(band_model, method):
    model_file, data = band_model
    predictor = load_model(model_file)
    path = _test_files(data, "high")[0]
    first = explain_waveform(predictor, load_audio(path, 16000), method, seed=7)
    second = explain_waveform(load_model(model_file), load_audio(path, 16000), method, seed=7)
    assert len(first) == len(second) > 1
    for a, b in zip(first, second):
        assert a.attribution.shape == (64, 64) and a.attribution.dtype == np.float32
        assert a.attribution.min() >= 0.0 and a.attribution.sum() > 0
        np.testing.assert_array_equal(a.attribution, b.attribution)


def test_gradcam_takes_the_last_map_of_at_least_7_by_7_cells():
    """A 224 px plot: the last (7 x 7) map, as Grad-CAM is usually run; a 64 px plot: the 8 x 8 stage, not the
    last 2 x 2 map; a plot too small for any 7 x 7 map: the last map of more than one pixel."""
    convs = [torch.nn.Conv2d(3 if i == 0 else 4, 4, 3, stride=2, padding=1) for i in range(5)]
    model = torch.nn.Sequential(*convs, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    assert gradcam_layer(model, torch.zeros(1, 3, 224, 224)) is convs[4]
    assert gradcam_layer(model, torch.zeros(1, 3, 64, 64)) is convs[2]
    assert gradcam_layer(model, torch.zeros(1, 3, 12, 12)) is convs[2]  # 6, 3, 2, 1, 1 cells per side
    with pytest.raises(ValueError, match="no layer with a spatial feature map"):
        gradcam_layer(model, torch.zeros(1, 3, 2, 2))


def test_attribute_refuses_an_unknown_method():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    with pytest.raises(ValueError, match="unknown attribution method 'saliency'"):
        attribute(model, torch.zeros(1, 3, 2, 2), torch.tensor([0]), "saliency")


def _spec(**overrides) -> PreprocessingSpec:
    from dspl.data.example import example_hp

    return build_config({**example_hp(), **overrides}).spec


def test_axes_in_seconds_follow_frames_and_chunk_start():
    """1 s chunks at 16 kHz, 512-sample frames every 256 samples: 61 frames over 64 columns; the left edge is
    half a hop before the first frame's centre (16 ms), the right edge half a hop after the last one's."""
    axes = plot_axes(_spec(), 16000, start=2.5)
    assert (axes.width, axes.frames) == (64, 61)
    assert axes.seconds(0) == pytest.approx(2.5 + 0.016 - 0.008)
    assert axes.seconds(64) == pytest.approx(2.5 + 60 * 0.016 + 0.016 + 0.008)
    assert axes.column(axes.seconds(17.25)) == pytest.approx(17.25)


def test_mel_axis_puts_the_lowest_frequency_in_the_bottom_row():
    """HTK mel from 0 to 8000 Hz in 64 bands: the bottom edge is below the first band's centre, the top above
    the last one's, and equal mel steps are equal numbers of rows."""
    axes = plot_axes(_spec(), 16000)
    mel_step = hertz_to_mel(8000.0) / 65
    assert axes.hertz(64.0) == pytest.approx(float(np.expm1(0.5 * mel_step / 1127.0) * 700.0))
    assert axes.hertz(0.0) == pytest.approx(float(np.expm1(64.5 * mel_step / 1127.0) * 700.0))
    assert axes.hertz(0.0) > 7800 > 7600 > axes.hertz(1.0) > 7400  # the top row: 7.5 to 7.8 kHz
    rows = axes.row(np.array([500.0, 1000.0, 2000.0]))
    assert np.all(np.diff(rows) < 0)
    assert axes.row(axes.hertz(12.5)) == pytest.approx(12.5)
    ticks = hertz_ticks(axes)
    assert set(ticks) >= {1000.0, 2000.0, 5000.0}
    assert np.all(np.diff(axes.row(ticks)) <= -64 / 7)  # round values, evenly apart on the plot


def test_linear_axis_is_bin_frequencies():
    """Linear plots: 257 FFT bins of 31.25 Hz; the top row's upper edge is half a bin above Nyquist."""
    axes = plot_axes(_spec(mel_scale=False, image_height=257), 16000)
    assert axes.features == 257
    assert axes.hertz(257.0 - 10.5) == pytest.approx(10 * 31.25)
    assert axes.hertz(0.0) == pytest.approx(8000.0 + 15.625)


def test_raw_features_keep_one_pixel_per_frame_and_feature():
    axes = plot_axes(_spec(use_plot_images=False), 16000)
    assert (axes.width, axes.height) == (61, 64)


def test_top_regions_report_time_frequency_cells_with_their_share():
    axes = plot_axes(_spec(), 16000)
    attribution = np.zeros((64, 64), np.float32)
    attribution[56:64, 0:8] = 3.0  # bottom-left cell: the lowest band of the first 1/8 of the chunk
    attribution[0:8, 56:64] = 1.0
    first, second, third = top_regions(attribution, axes, 3)
    assert (first.share, second.share, third.share) == (0.75, 0.25, 0.0)
    assert (first.start, first.end) == pytest.approx((axes.seconds(0), axes.seconds(8)))
    assert (first.low, first.high) == pytest.approx((axes.hertz(64), axes.hertz(56)))
    assert second.high == pytest.approx(axes.hertz(0)) and second.end == pytest.approx(axes.seconds(64))
    assert top_regions(np.zeros((64, 64)), axes) == []


def test_explain_command_writes_pngs_maps_regions_and_summaries(band_model, tmp_path):
    model_file, data = band_model
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    for name in ("test_001.wav", "test_002.wav"):
        (audio / "sub" / name).write_bytes((data / "audio" / name).read_bytes())
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", "-md", str(model_file), "-d", str(audio), "-o", str(out),
                                      "--method", "integrated-gradients", "--target", "high"])
    assert result.exit_code == 0, result.output
    chunks = {p.stem for p in (out / "sub").glob("test_00?_?.npy")}
    assert {p.stem for p in (out / "sub").glob("test_00?_?.png")} == chunks and len(chunks) >= 4
    assert sorted(p.name for p in (out / "sub").glob("*_summary.png")) == ["test_001_summary.png",
                                                                           "test_002_summary.png"]
    attribution = np.load(out / "sub" / "test_001_0.npy")
    assert attribution.shape == (64, 64) and attribution.dtype == np.float32
    with Image.open(out / "sub" / "test_001_0.png") as image:
        assert image.size[0] >= 300 and image.size[1] >= 200
    rows = list(csv.DictReader((out / "regions.csv").open()))
    assert len(rows) == 3 * len(chunks)
    assert {r["target"] for r in rows} == {"high"} and {r["filename"] for r in rows} == {
        "sub/test_001.wav", "sub/test_002.wav"}
    first = [r for r in rows if r["filename"] == "sub/test_001.wav" and r["chunk"] == "0"]
    assert [r["rank"] for r in first] == ["1", "2", "3"]
    shares = [float(r["share"]) for r in first]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0
    cells = top_regions(attribution, plot_axes(load_model(model_file).features.spec, 16000), 3)
    assert [float(r["share"]) for r in first] == pytest.approx([c.share for c in cells], abs=1e-4)
    assert all(0 <= float(r["low_hz"]) < float(r["high_hz"]) <= 8100 for r in rows)


def test_explain_command_names_an_unknown_target(band_model, tmp_path):
    model_file, data = band_model
    result = CliRunner().invoke(cli, ["explain", "-md", str(model_file), "-d", str(data / "audio" / "test_001.wav"),
                                      "-o", str(tmp_path), "--target", "bird"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --target: value 'bird' is not a class of the model (known: low, high, noise)"


@pytest.mark.parametrize("method", METHODS)
def test_raw_feature_models_get_maps_in_plot_orientation(tmp_path, method):
    """Without plot images the model sees [frames, features]; its maps come back turned like plots (frequency
    up, time to the right), one pixel per frame and mel band, with the matching axes."""
    from dspl.config import ClassConfig
    from dspl.data.example import CLASSES, example_hp
    from dspl.models.modelfile import save_model_file

    hp = build_config({**example_hp(), "use_plot_images": False, "basemodel_name": "test_efficientnet",
                       "num_units": 8})
    classes = ClassConfig.from_dict(CLASSES)
    torch.manual_seed(0)
    model_file = save_model_file(tmp_path / "model.h5", untrained_model(hp, 3), hp, classes)
    waveform = torch.from_numpy(np.random.default_rng(0).standard_normal(24000).astype(np.float32)) * 0.1
    chunks = explain_waveform(load_model(model_file), waveform, method, target="low")
    assert len(chunks) == 2 and chunks[1].axes.start == 0.5
    assert chunks[0].attribution.shape == chunks[0].pixels.shape == (64, 61)
    assert (chunks[0].axes.width, chunks[0].axes.height) == (61, 64)
