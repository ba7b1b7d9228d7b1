"""`dspl plot` through click's CliRunner: file names, formats, dtypes, shapes, contact sheet and errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dspl.cli.main import cli

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hp_config.json"


def write_grid(path: Path, **overrides) -> Path:
    """The example grid with 1 s chunks (hop 0.5 s), 32x24 plots and the given overrides."""
    grid = json.loads(CONFIG.read_text())
    grid.update(chunk_size=[1.0], chunk_hop_size=[0.5], stft_window_size=[0.032], stft_hop_size=[0.016],
                stft_fft_length=[0.032], num_mel_bins=[32], image_height=[32], image_width=[24])
    grid.update({key: value if isinstance(value, list) else [value] for key, value in overrides.items()})
    path.write_text(json.dumps(grid))
    return path


def run(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def test_png_per_chunk_recursive_with_contact_sheet(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    write_sine(tmp_path / "in" / "low.wav", frequency=300.0, seconds=2.0)
    write_sine(tmp_path / "in" / "sub" / "high.flac", frequency=5000.0, seconds=1.2)
    out = tmp_path / "out"
    result = run("-hc", str(write_grid(tmp_path / "hp.json")), "-d", str(tmp_path / "in"), "-o", str(out))
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
    grid = write_grid(tmp_path / "hp.json", use_plot_images=[True, False], normalize_audio=[False])
    assert run("-hc", str(grid), "-d", str(audio), "-o", str(out), "--format", "npy").exit_code == 0
    plot = np.load(out / "tone_0.npy")
    assert plot.dtype == np.float32 and plot.shape == (32, 24, 3)
    assert 0.0 <= plot.min() and plot.max() <= 255.0 and plot.max() > 200.0
    raw_out = tmp_path / "raw"
    result = run("-hc", str(grid), "-d", str(audio), "-o", str(raw_out), "--format", "npy", "--config-index", "1")
    assert result.exit_code == 0, result.output
    raw = np.load(raw_out / "tone_0.npy")
    assert raw.dtype == np.float32 and raw.shape == (61, 32, 1)
    result = run("-hc", str(grid), "-d", str(tmp_path / "quiet"), "-o", str(tmp_path / "quiet_raw"), "--format", "npy",
                 "--config-index", "1")
    assert result.exit_code == 0, result.output
    quiet = np.load(tmp_path / "quiet_raw" / "tone_0.npy")  # absolute dB: half the amplitude is 6.02 dB less
    assert raw.max() - quiet.max() == pytest.approx(20 * np.log10(2.0), abs=1e-3)
    result = run("-hc", str(grid), "-d", str(audio), "-o", str(tmp_path / "grey"), "--config-index", "1")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "grey" / "tone_0.png") as image:
        assert image.mode == "L" and image.size == (32, 61)


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    write_sine(tmp_path / "in" / "good.wav")
    (tmp_path / "in" / "broken.wav").write_bytes(b"not audio")
    result = run("-hc", str(write_grid(tmp_path / "hp.json")), "-d", str(tmp_path / "in"), "-o", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert "skipped 1 file(s)" in result.output and "broken.wav" in result.output
    assert (tmp_path / "o" / "good_0.png").is_file()


def test_user_errors_exit_1_with_one_line(tmp_path: Path, write_sine: Callable[..., Path]) -> None:
    audio = write_sine(tmp_path / "tone.wav")
    grid = str(write_grid(tmp_path / "hp.json"))
    result = run("-hc", grid, "-d", str(audio), "-o", str(tmp_path / "o"), "--config-index", "3")
    assert result.exit_code == 1 and "configuration index 3" in result.output
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    result = run("-hc", grid, "-d", str(broken), "-o", str(tmp_path / "o"))
    assert result.exit_code == 1 and "broken.wav" in result.output and "Traceback" not in result.output
