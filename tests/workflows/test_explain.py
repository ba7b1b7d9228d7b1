"""`dspl explain` (dspl.workflows.explain): the PNGs, maps, regions and summaries it writes, an unknown target,
raw-feature models' maps in plot orientation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import (
    build_config,
    one_error_line,
    outside,
    partial_files,
    run,
    snapshot,
    untrained_model,
)
from PIL import Image

from dspl.cli.main import cli
from dspl.explain import METHODS, plot_axes, top_regions
from dspl.loading import load_model
from dspl.workflows.explain import explain_waveform


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
    assert result.output.strip() == \
        "error: --target: value 'bird' is not a class of the model (known: low, high, noise)"


def test_explain_on_a_full_disk_is_one_line_and_keeps_the_earlier_maps(mounts, tmp_path, spread_model, write_sine):
    disk = mounts.tmpfs("disk", size="4m")
    audio, out = write_sine(tmp_path / "audio" / "a.wav", seconds=1.5), disk / "out"
    arguments = ("explain", "-md", str(spread_model), "-d", str(audio), "-o", str(out), "--method", "gradcam")
    assert run(*arguments).exit_code == 0
    write_sine(audio, frequency=300.0, seconds=1.5)
    mounts.fill(disk)
    earlier, around = snapshot(out), outside(tmp_path, out)
    one_error_line(run(*arguments), f"{out / 'a_0.png'}: No space left on device")
    assert snapshot(out) == earlier and partial_files(out) == [] and outside(tmp_path, out) == around


def test_files_that_share_a_name_get_maps_of_their_own(tmp_path, spread_model, write_sine):
    """a.wav and a.flac keep their whole names, files of one name in two folders their folders; unique names
    stay DeepSpectrumLite's."""
    inputs = {"a.wav": 300.0, "a.flac": 3000.0, "b.wav": 1000.0, "s1/c.wav": 500.0, "s2/c.wav": 5000.0}
    for name, frequency in inputs.items():
        write_sine(tmp_path / "in" / name, frequency=frequency, seconds=1.0)
    out = tmp_path / "out"
    result = run("explain", "-md", str(spread_model), "-d", str(tmp_path / "in"), "-o", str(out), "--method",
                 "gradcam")
    assert result.exit_code == 0, result.output
    prefixes = ["a.flac", "a.wav", "b", "s1/c", "s2/c"]
    endings = ("0.npy", "0.png", "summary.png")  # one chunk of 1 s each
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == sorted(
        [f"{prefix}_{ending}" for prefix in prefixes for ending in endings] + ["regions.csv"])
    for ending in endings:
        assert len({(out / f"{prefix}_{ending}").read_bytes() for prefix in prefixes}) == len(prefixes)
    rows = list(csv.DictReader((out / "regions.csv").open()))
    assert sorted({r["filename"] for r in rows}) == sorted(inputs)


def test_inputs_whose_map_names_still_meet_are_refused_before_anything_is_written(tmp_path, spread_model, write_sine):
    for name in ("x.wav", "X.flac", "x.wav.flac"):
        write_sine(tmp_path / "in" / name)
    one_error_line(run("explain", "-md", str(spread_model), "-d", str(tmp_path / "in"), "-o", str(tmp_path / "out")),
                   f"{tmp_path / 'in' / 'x.wav'} and {tmp_path / 'in' / 'x.wav.flac'}: their outputs would have the "
                   "same names (x.wav_<chunk>) and overwrite each other; rename one of them")
    assert not (tmp_path / "out").exists()


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
