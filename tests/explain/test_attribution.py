"""Attribution maps (dspl.explain.attribution): sanity checks that make the maps trustworthy, Grad-CAM's layer.

The sanity checks use a model trained on the example set (the `band_model` fixture of conftest.py), whose classes
differ by frequency band ("low" tones at 150-400 Hz with harmonics up to about 2 kHz, "high" tones at 1.5-3 kHz
with one harmonic up to 6 kHz): its maps must sit in the band of the class they explain, differ from a
randomised-weights model's maps (Adebayo et al., 2018, "Sanity checks for saliency maps") and be the same run
after run.

Measured on this model (mean band share against the band's share of the plot area; mean rank correlation with
the randomised model's maps): occlusion low 0.60 / 0.35, high 0.96 / 0.61, correlation 0.01 and 0.21;
Grad-CAM on the 8 x 8 stage (see ``gradcam_layer``) low 0.58, high 0.69, correlation 0.37 and 0.40 - on the
backbone's last, 2 x 2 map it failed both tests (0.44 and 0.39 in band, correlation 0.92 for high tones);
integrated gradients passes the randomisation test but puts most of a low tone's attribution above 1 kHz
(the dark upper band is evidence for "low" too), so it is not held to the band test.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import untrained_model
from scipy.stats import spearmanr

from dspl.data.audio import load_audio
from dspl.explain import METHODS, attribute, band_share
from dspl.explain.attribution import forward_cost, gradcam_layer
from dspl.loading import load_model
from dspl.models.predictor import Predictor
from dspl.workflows.explain import explain_waveform

# where each tone class has its energy, and the rest of the plot
BANDS = {"low": (0.0, 1000.0), "high": (1200.0, 8000.0)}


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


@pytest.mark.parametrize("method, size", [("occlusion", 64), ("occlusion", 32), ("gradcam", 64),
                                          ("integrated-gradients", 32)])
def test_the_cost_of_a_method_is_the_forward_passes_it_runs(method, size):
    """forward_cost's passes and batch are what the method runs on one plot (the budget of the report's examples
    is spent by its estimate)."""
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).eval()
    batches: list[int] = []
    model.register_forward_hook(lambda _module, inputs, _output: batches.append(inputs[0].shape[0]))
    attribute(model, torch.rand(1, 3, size, size), torch.tensor([1]), method)
    passes, batch = forward_cost(method, size, size)
    backward = {"gradcam": 1, "integrated-gradients": len(batches)}.get(method, 0)  # a backward pass per forward one
    assert (len(batches) + backward, max(batches)) == (passes, batch)
