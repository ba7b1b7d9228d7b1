"""`dspl plot --format npy` writes exactly what the model is fed, and that array through the fp32 TFLite model
(`dspl convert`) gives `predict`'s chunk scores.

Compared against the tensors a forward pre-hook sees inside `predict`, never against memorised pixel values, so
the test holds whatever the plot orientation or dB convention is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import CLASS_DICT, spread_model_file, tiny_config, write_grid

import dspl
from dspl.cli.main import cli
from dspl.export.tflite_convert import tflite_predict


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


def test_npy_plots_through_the_fp32_tflite_model_give_predicts_scores(fed, npy_plots, model_file, tmp_path):
    destination = tmp_path / "model.tflite"
    result = CliRunner().invoke(cli, ["convert", "-s", str(model_file), "-d", str(destination)])
    assert result.exit_code == 0, result.output
    scores = tflite_predict(destination, npy_plots)
    expected = fed["result"].chunk_scores
    assert scores.shape == expected.shape
    np.testing.assert_allclose(scores, expected, atol=1e-4, rtol=0)
    assert np.abs(expected - expected.mean(axis=0)).max() > 1e-2  # the chunks' scores differ: a real comparison
