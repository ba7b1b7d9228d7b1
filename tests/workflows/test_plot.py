"""`dspl plot` (dspl.workflows.plot) through click's CliRunner: file names, formats, dtypes, shapes, contact
sheet and errors; its npy output is exactly what the model is fed, and that array through the fp32 TFLite model
(`dspl convert`) gives `predict`'s chunk scores.

The model's inputs are compared against the tensors a forward pre-hook sees inside `predict`, never against
memorised pixel values, so the test holds whatever the plot orientation or dB convention is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from helpers import (
    CLASS_DICT,
    ROOT,
    one_error_line,
    outside,
    partial_files,
    snapshot,
    spread_model_file,
    tiny_config,
    write_grid,
)
from PIL import Image

import dspl
from dspl.cli.main import cli
from dspl.export.tflite_convert import tflite_predict

CONFIG = ROOT / "configs" / "hp_config.json"


def plot_grid(path: Path, **overrides) -> Path:
    """The example grid with 1 s chunks (hop 0.5 s), 32x24 plots and the given overrides."""
    grid = json.loads(CONFIG.read_text())
    grid.update(chunk_size=[1.0], chunk_hop_size=[0.5], stft_window_size=[0.032], stft_hop_size=[0.016],
                stft_fft_length=[0.032], num_mel_bins=[32], image_height=[32], image_width=[24])
    grid.update({key: value if isinstance(value, list) else [value] for key, value in overrides.items()})
    path.write_text(json.dumps(grid))
    return path


def run_plot(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def test_png_per_chunk_recursive_with_contact_sheet(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    write_sine(tmp_path / "in" / "low.wav", frequency=300.0, seconds=2.0)
    write_sine(tmp_path / "in" / "sub" / "high.flac", frequency=5000.0, seconds=1.2)
    out = tmp_path / "out"
    result = run_plot("-hc", str(plot_grid(tmp_path / "hp.json")), "-d", str(tmp_path / "in"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "contact_sheet.png", "low_0.png", "low_1.png", "low_2.png", "sub/high_0.png"]
    with Image.open(out / "low_1.png") as image:
        assert image.mode == "RGB" and image.size == (24, 32)
        pixels = np.asarray(image)
    assert pixels.dtype == np.uint8 and pixels.shape == (32, 24, 3)
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 100
    assert "4 image(s) of 2 file(s)" in result.output


def test_npy_plots_and_raw_features(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    audio = write_sine(tmp_path / "tone.wav", seconds=1.0)
    write_sine(tmp_path / "quiet" / "tone.wav", seconds=1.0, amplitude=0.25)
    out = tmp_path / "npy"
    grid = plot_grid(tmp_path / "hp.json", use_plot_images=[True, False], normalize_audio=[False])
    assert run_plot("-hc", str(grid), "-d", str(audio), "-o", str(out), "--format", "npy").exit_code == 0
    plot = np.load(out / "tone_0.npy")
    assert plot.dtype == np.float32 and plot.shape == (32, 24, 3)
    assert 0.0 <= plot.min() and plot.max() <= 255.0 and plot.max() > 200.0
    raw_out = tmp_path / "raw"
    result = run_plot("-hc", str(grid), "-d", str(audio), "-o", str(raw_out), "--format", "npy", "--config-index", "1")
    assert result.exit_code == 0, result.output
    raw = np.load(raw_out / "tone_0.npy")
    assert raw.dtype == np.float32 and raw.shape == (61, 32, 1)
    result = run_plot("-hc", str(grid), "-d", str(tmp_path / "quiet"), "-o", str(tmp_path / "quiet_raw"),
                      "--format", "npy", "--config-index", "1")
    assert result.exit_code == 0, result.output
    quiet = np.load(tmp_path / "quiet_raw" / "tone_0.npy")  # absolute dB: half the amplitude is 6.02 dB less
    assert raw.max() - quiet.max() == pytest.approx(20 * np.log10(2.0), abs=1e-3)
    result = run_plot("-hc", str(grid), "-d", str(audio), "-o", str(tmp_path / "grey"), "--config-index", "1")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "grey" / "tone_0.png") as image:
        assert image.mode == "L" and image.size == (32, 61)



def test_files_that_share_a_name_get_outputs_of_their_own(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    """a.wav and a.flac (and B.wav beside b.flac, one name on a case-insensitive file system) keep their whole
    names; files of one name in two folders keep their folders, also when a glob finds them; unique names stay."""
    inputs = {"a.wav": 300.0, "a.flac": 2000.0, "B.wav": 500.0, "b.flac": 4000.0, "c.wav": 700.0,
              "s1/d.wav": 900.0, "s2/d.wav": 3000.0}
    for name, frequency in inputs.items():
        write_sine(tmp_path / "in" / name, frequency=frequency, seconds=1.0)
    grid = str(plot_grid(tmp_path / "hp.json"))
    result = run_plot("-hc", grid, "-d", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    expected = ["B.wav_0.png", "a.flac_0.png", "a.wav_0.png", "b.flac_0.png", "c_0.png", "s1/d_0.png", "s2/d_0.png"]
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*_0.png")) == sorted(expected)
    assert len({(out / name).read_bytes() for name in expected}) == len(expected)
    assert "7 image(s) of 7 file(s)" in result.output
    result = run_plot("-hc", grid, "-d", str(tmp_path / "in" / "s*" / "d.wav"), "-o", str(tmp_path / "glob"))
    assert result.exit_code == 0, result.output
    for name in ("s1/d_0.png", "s2/d_0.png"):
        assert (tmp_path / "glob" / name).read_bytes() == (out / name).read_bytes()


def test_inputs_whose_output_names_still_meet_are_refused_before_anything_is_written(
        tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    for name in ("a.wav", "a.flac", "a.wav.flac"):  # a.wav keeps its whole name: a.wav.flac's stem
        write_sine(tmp_path / "in" / name)
    one_error_line(run_plot("-hc", str(plot_grid(tmp_path / "hp.json")), "-d", str(tmp_path / "in"), "-o",
                            str(tmp_path / "out")),
                   f"{tmp_path / 'in' / 'a.wav'} and {tmp_path / 'in' / 'a.wav.flac'}: their outputs would have the "
                   "same names (a.wav_<chunk>) and overwrite each other; rename one of them")
    assert not (tmp_path / "out").exists()


def noise_file(path: Path, seconds: int, sample_rate: int = 48000) -> Path:
    """Stereo noise written a second at a time (the test itself never holds the whole file)."""
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sample_rate, 2, subtype="PCM_16") as f:
        for _ in range(seconds):
            f.write((0.1 * rng.standard_normal((sample_rate, 2))).astype(np.float32))
    return path


def test_a_file_read_in_blocks_gives_the_plots_of_the_whole_file(tmp_path: Path) -> None:
    """12 s at 48 kHz is more than two decoding blocks (2^18 frames each), resampled to 16 kHz."""
    from dspl.config import load_grid
    from dspl.data.audio import load_audio
    from dspl.data.chunking import split_into_chunks
    from dspl.features import PlotTransform

    audio = noise_file(tmp_path / "long.wav", seconds=12)
    grid = plot_grid(tmp_path / "hp.json")
    out = tmp_path / "npy"
    assert run_plot("-hc", str(grid), "-d", str(audio), "-o", str(out), "--format", "npy").exit_code == 0
    spec = load_grid(grid)[0].spec
    with torch.inference_mode():
        whole = PlotTransform(spec)(split_into_chunks(load_audio(audio, spec.sample_rate), spec)).numpy()
    streamed = np.stack([np.load(out / f"long_{i}.npy") for i in range(whole.shape[0])])
    assert not (out / f"long_{whole.shape[0]}.npy").exists()
    np.testing.assert_allclose(streamed, whole.transpose(0, 2, 3, 1), atol=0.05)


PLOT_MEMORY = '''
import resource, sys
from dspl.config import load_grid
from dspl.workflows.plot import plot_audio
spec = load_grid(sys.argv[1])[0].spec
plot_audio(spec, sys.argv[2], sys.argv[4], fmt="npy")  # warm: plots and allocator reach their working size
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = plot_audio(spec, sys.argv[3], sys.argv[4], fmt="npy")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(summary.images, (after - before) // 1024)
'''


@pytest.mark.slow
def test_plotting_a_long_file_keeps_memory_flat(tmp_path: Path) -> None:
    """Four minutes of 48 kHz stereo: decoded whole it would take 92 MB as float32 before its mono mix and
    resampling; read in blocks, the peak grows by less than 40 MB over plotting a 3 s file."""
    grid = plot_grid(tmp_path / "hp.json")
    short, long = noise_file(tmp_path / "short.wav", seconds=3), noise_file(tmp_path / "long.wav", seconds=240)
    output = subprocess.run([sys.executable, "-c", PLOT_MEMORY, str(grid), str(short), str(long),
                             str(tmp_path / "out")], capture_output=True, text=True, check=True).stdout
    images, growth_mb = map(int, output.split())
    assert images == 479  # 1 s chunks every 0.5 s of 240 s
    assert growth_mb < 40

def test_unreadable_files_are_skipped_and_reported(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    write_sine(tmp_path / "in" / "good.wav")
    (tmp_path / "in" / "broken.wav").write_bytes(b"not audio")
    result = run_plot("-hc", str(plot_grid(tmp_path / "hp.json")), "-d", str(tmp_path / "in"),
                      "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "skipped 1 file(s)" in result.output and "broken.wav" in result.output
    assert (tmp_path / "o" / "good_0.png").is_file()


def test_user_errors_exit_1_with_one_line(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    audio = write_sine(tmp_path / "tone.wav")
    grid = str(plot_grid(tmp_path / "hp.json"))
    result = run_plot("-hc", grid, "-d", str(audio), "-o", str(tmp_path / "o"), "--config-index", "3")
    assert result.exit_code == 1 and "configuration index 3" in result.output
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    result = run_plot("-hc", grid, "-d", str(broken), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "broken.wav" in result.output and "Traceback" not in result.output


def test_a_full_disk_is_one_line_and_leaves_no_partial_image(mounts, tmp_path, write_sine):
    disk = mounts.tmpfs("disk", size="2m")
    audio, grid, out = write_sine(tmp_path / "audio" / "tone.wav"), plot_grid(tmp_path / "hp.json"), disk / "out"
    assert run_plot("-hc", str(grid), "-d", str(audio), "-o", str(out)).exit_code == 0
    write_sine(audio, frequency=300.0)  # other plots this time
    mounts.fill(disk)
    earlier, around = snapshot(out), outside(tmp_path, out)
    one_error_line(run_plot("-hc", str(grid), "-d", str(audio), "-o", str(out)),
                   f"{out / 'tone_0.png'}: No space left on device")
    assert snapshot(out) == earlier and partial_files(out) == [] and outside(tmp_path, out) == around


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path, write_sine):
    audio = write_sine(tmp_path / "audio" / ("x" * 250 + ".wav"))  # fits; its plot x…x_0.png has 256 bytes
    out = tmp_path / "out"
    one_error_line(run_plot("-hc", str(plot_grid(tmp_path / "hp.json")), "-d", str(audio), "-o", str(out)),
                   f"{out / ('x' * 250 + '_0.png')}: File name too long")
    assert partial_files(out) == [] and sorted(out.iterdir()) == []


def test_an_output_path_that_is_a_file_and_an_absurd_plot_size_are_one_line(tmp_path, write_sine):
    audio = write_sine(tmp_path / "tone.wav")
    (tmp_path / "taken").write_text("a file")
    one_error_line(run_plot("-hc", str(plot_grid(tmp_path / "hp.json")), "-d", str(audio), "-o",
                            str(tmp_path / "taken" / "out")),
                   f"{tmp_path / 'taken' / 'out'}: cannot use it as the output directory (-o): "
                   f"{tmp_path / 'taken'} is a file, expected a directory")
    grid = plot_grid(tmp_path / "big.json", image_width=100000)
    one_error_line(run_plot("-hc", str(grid), "-d", str(audio), "-o", str(tmp_path / "out")),
                   f"{grid}: key 'image_width': value 100000 is out of range, expected a whole number of pixels from "
                   "1 to 2048")
    assert not (tmp_path / "out").exists() and (tmp_path / "taken").read_text() == "a file"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return spread_model_file(tmp_path_factory.mktemp("plot_model") / "model.h5", tiny_config(image_width=40),
                             CLASS_DICT, seed=1)


@pytest.fixture(scope="module")
def fed(model_file, example_dir) -> dict:
    """predict on one example file, with the model's inputs recorded."""
    predictor = dspl.load_model(model_file)
    inputs: list[torch.Tensor] = []
    hook = predictor.model.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
    audio = sorted((example_dir / "audio").glob("test_*.wav"))[0]
    try:
        result = predictor.predict(audio)
    finally:
        hook.remove()
    plots = torch.cat(inputs).permute(0, 2, 3, 1).numpy()  # [C, H, W, 3] as the npy files hold them
    return {"predictor": predictor, "audio": audio, "result": result, "plots": plots}


@pytest.fixture(scope="module")
def npy_plots(fed, tmp_path_factory) -> np.ndarray:
    work = tmp_path_factory.mktemp("plot_npy")
    grid = write_grid(work / "hp.json", fed["predictor"].config)
    result = CliRunner().invoke(cli, ["plot", "-hc", str(grid), "-d", str(fed["audio"]), "-o", str(work / "out"),
                                      "--format", "npy"])
    assert result.exit_code == 0, result.output
    files = sorted((work / "out").glob("*.npy"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    assert [p.name for p in files] == [f"{fed['audio'].stem}_{i}.npy" for i in range(len(files))]
    return np.stack([np.load(p) for p in files])


def test_npy_plots_are_what_the_model_is_fed(fed, npy_plots):
    plots = fed["plots"]
    hp = fed["predictor"].config.spec
    assert len(plots) == len(fed["result"].chunk_scores) >= 3
    assert npy_plots.dtype == np.float32 and npy_plots.shape == plots.shape == (len(plots), 32, 40, 3)
    np.testing.assert_allclose(npy_plots, plots, atol=1e-4, rtol=0)
    # the plots are not symmetric, so a flipped or rotated file could not pass the comparison above
    for flipped in (npy_plots[:, ::-1, ::-1], npy_plots[:, ::-1], npy_plots[:, :, ::-1]):
        assert np.abs(flipped - plots).max() > 20
    assert hp.image_height == 32 and hp.image_width == 40


@pytest.mark.slow
def test_npy_plots_through_the_fp32_tflite_model_give_predicts_scores(fed, npy_plots, model_file, tmp_path):
    destination = tmp_path / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", "-s", str(model_file), "-d", str(destination)])
    assert result.exit_code == 0, result.output
    scores = tflite_predict(destination, npy_plots)
    expected = fed["result"].chunk_scores
    assert scores.shape == expected.shape
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert np.abs(expected - expected.mean(axis=0)).max() > 1e-2  # the chunks' scores differ: a real comparison
