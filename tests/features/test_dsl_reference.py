"""dspl's plots against DeepSpectrumLite 1.0.2's own (tests/data/dsl_reference/, made by tools/dsl_reference.py).

Every case of the reference grid goes through the torch plots, the TensorFlow reference and, for a sample of
fixed-length cases, the TFLite preprocessor. Tolerance as the README states it: on the 0..255 scale |diff| <= 0.5 for
>= 99.9 % of pixels and <= 2.0 for all; raw dB features within 1e-3 dB, raw power and MFCCs within 1e-5 of
the chunk's largest |value| (float32 carries about seven digits of an FFT or a DCT over the whole chunk). A
case is widened only where TensorFlow's own FFT moved between 2.5 and 2.19 (drift.json, measured by
tools/dsl_drift.py), and then to that drift plus a margin, never further.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from helpers import TESTS

REFERENCE = TESTS / "data" / "dsl_reference"
AUDIO = TESTS / "data" / "dsl_audio"
META = json.loads((REFERENCE / "cases.json").read_text(encoding="utf-8"))
DRIFT = json.loads((REFERENCE / "drift.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in META["cases"]}
# DeepSpectrumLite never reads mel_scale (always mel): its 'mel_scale: false' case is no reference for dspl's.
COMPARED = [name for name, case in CASES.items() if case["hp"]["mel_scale"]]
TFLITE_CASES = ("readme", "resize-lanczos3-aa", "resize-bicubic-noaa", "size-w64-h160", "mfcc-db-lifter22", "mfcc-ln",
                "raw-mel-db", "raw-mfcc-db-lifter22", "fft-padded-nonpow2", "sr44k-nonpow2", "sr44k-pow2-nearest",
                "normalize-8k-nearest")
IMAGE_SHARE, IMAGE_MAX = 0.001, 2.0  # the README: > 0.5 grey levels on at most 0.1 % of pixels, none > 2.0
FEATURE_SHARE, FEATURE_MAX = 0.0, 1.0  # raw features: every value within one step
SHARE_MARGIN = 0.002                   # widened cases: the drift's share of moved values + 0.2 points
MAX_MARGIN = {"image": 2.0, "feature": 1.0}  # ... and its largest move + 2 grey levels / + 1 step


def dspl_hp(name: str) -> Any:
    """The case's preprocessing settings with dspl's types and defaults. Not checked as a combination with the
    other keys: dspl refuses whole-file raw features for training (so does DeepSpectrumLite's pipeline), yet the
    transforms take them."""
    from dspl.config import PREPROCESSING_KEYS, PreprocessingSettings, parse_grid

    values = {k: v[0] for k, v in parse_grid({k: [v] for k, v in CASES[name]["hp"].items()}, name).items()}
    return PreprocessingSettings(**{k: v for k, v in values.items() if k in PREPROCESSING_KEYS})


@lru_cache(maxsize=None)
def reference(name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(raw chunks, DeepSpectrumLite's outputs) of a case, one array per chunk or whole file."""
    arrays = np.load(REFERENCE / f"{name}.npz")
    count = len(CASES[name]["chunks"])
    return [arrays[f"audio_{i}"] for i in range(count)], [arrays[f"dsl_{i}"] for i in range(count)]


def moves(name: str, actual: list[np.ndarray]) -> np.ndarray:
    """Per value, how far dspl is from DeepSpectrumLite in steps (drift.json's, as tools/dsl_drift.py measures):
    0.5 grey levels for plots; 1e-3 dB for raw dB features; for raw power or MFCCs, a small share of the
    chunk's largest |value| (float32 rounding of an FFT or a DCT scales with the whole chunk)."""
    hp, (_, expected) = CASES[name]["hp"], reference(name)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    steps = []
    for a, e in zip(actual, expected):
        if hp["use_plot_images"]:
            step = DRIFT["image_step"]
        elif hp["db_scale"] and not hp["num_mfccs"]:
            step = DRIFT["db_step"]
        else:
            step = DRIFT["relative_step"] * float(np.abs(e).max())
        steps.append(np.abs(a - e).ravel() / step)
    return np.concatenate(steps)


def tolerance(name: str) -> tuple[float, float]:
    """(share of values allowed over one step, largest move allowed in steps): the README's, or where
    TensorFlow 2.19 itself is further from the reference, that drift plus the margin."""
    kind = "image" if CASES[name]["hp"]["use_plot_images"] else "feature"
    scale = DRIFT["image_step"] if kind == "image" else 1.0
    share, largest = (IMAGE_SHARE, IMAGE_MAX / scale) if kind == "image" else (FEATURE_SHARE, FEATURE_MAX)
    drift = DRIFT["cases"][name]
    if drift["share_over_step"] <= share and drift["max_steps"] <= largest:
        return share, largest
    widened_largest = drift["max_steps"] + MAX_MARGIN[kind] / scale
    return max(share, drift["share_over_step"] + SHARE_MARGIN), max(largest, widened_largest)


def assert_matches(name: str, actual: list[np.ndarray]) -> None:
    """dspl's outputs of a case are within its tolerance of DeepSpectrumLite's."""
    steps = moves(name, actual)
    share, largest = tolerance(name)
    moved = float(np.mean(steps > 1.0))
    assert moved <= share and steps.max() <= largest, (
        f"{name}: {100 * moved:.3f} % of values more than one step off (allowed {100 * share:.3f} %), "
        f"largest {steps.max():.3g} steps (allowed {largest:.3g})")


def test_reference_chunks_are_the_committed_recordings():
    for name, case in CASES.items():
        chunks, _ = reference(name)
        for chunk, span in zip(chunks, case["chunks"]):
            samples, _ = sf.read(AUDIO / span["file"], dtype="int16")
            expected = samples[span["offset"]:span["offset"] + span["num_samples"]].astype(np.float32) / 32768.0
            assert chunk.dtype == np.float32 and np.array_equal(chunk, expected), name


def test_deepspectrumlite_ignores_mel_scale():
    """Why the 'linear-db' case is not compared: the original plotted mel bands with mel_scale false too."""
    ignored = [name for name in CASES if name not in COMPARED]
    assert ignored == ["linear-db"]
    assert all(np.array_equal(a, b) for a, b in zip(reference("linear-db")[1], reference("base")[1]))


@pytest.mark.parametrize("name", COMPARED)
def test_torch_plots_match_deepspectrumlite(name):
    import torch

    from dspl.features import PlotTransform

    transform = PlotTransform(dspl_hp(name).spec)
    chunks, _ = reference(name)
    with torch.no_grad():  # one call per chunk: whole files differ in length; [1, C, H, W] -> [H, W, C]
        actual = [transform(torch.from_numpy(c[None, :]))[0].permute(1, 2, 0).numpy() for c in chunks]
    assert_matches(name, actual)


@pytest.mark.parametrize("name", COMPARED)
def test_tf_reference_matches_deepspectrumlite(name):
    from dspl.export.tf_reference import TFPlotPipeline

    pipeline = TFPlotPipeline(dspl_hp(name).spec)
    chunks, _ = reference(name)
    assert_matches(name, [pipeline(c[None, :]).numpy()[0] for c in chunks])


@pytest.mark.parametrize("name", TFLITE_CASES)
def test_tflite_preprocessor_matches_deepspectrumlite(name, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from dspl.export.preprocessor import create_preprocessor

    interpreter = Interpreter(model_path=str(create_preprocessor(dspl_hp(name).spec, tmp_path / "pre.tflite")))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    actual = []
    for chunk in reference(name)[0]:
        interpreter.set_tensor(source["index"], chunk[None, :])
        interpreter.invoke()
        actual.append(interpreter.get_tensor(target["index"])[0])
    assert_matches(name, actual)


def test_flipping_features_before_the_resize_fails_for_nearest():
    """The old dspl order (features flipped to image rows, then resized) moves whole pixel rows with nearest;
    resizing [frames, features] first and turning it a quarter afterwards is DeepSpectrumLite's."""
    import matplotlib
    import tensorflow as tf
    import torch

    from dspl.features import FeatureTransform

    name = "readme"
    hp = dspl_hp(name)
    assert hp.resize_method == "nearest"
    chunks, _ = reference(name)
    with torch.no_grad():
        features = FeatureTransform(hp.spec)(torch.from_numpy(np.stack(chunks))).numpy().astype(np.float64)
    low = features.min(axis=(1, 2), keepdims=True)
    position = 255.0 * (features - low) / (features.max(axis=(1, 2), keepdims=True) - low)
    table = np.asarray(matplotlib.colormaps[hp.color_map](np.arange(256))[:, :3])
    index = np.minimum(np.floor(position).astype(int), 254)
    fraction = (position - index)[..., None]
    colours = ((1.0 - fraction) * table[index] + fraction * table[index + 1]).astype(np.float32)  # [B, frames, f, 3]
    size = (hp.image_width, hp.image_height)

    def plots(image: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
        resized = tf.image.resize(image, size, method="nearest").numpy()
        return list(np.clip(resized * 255.0, 0.0, 255.0))

    turned_after = [np.rot90(p, k=1) for p in plots(colours, size)]
    flipped_first = plots(np.flip(colours.transpose(0, 2, 1, 3), axis=1), size[::-1])
    assert_matches(name, turned_after)
    with pytest.raises(AssertionError, match="more than one step off"):
        assert_matches(name, flipped_first)


def test_dspl_plot_command_matches_deepspectrumlite_on_its_readme_configuration(tmp_path):
    """`dspl plot --format npy` on DeepSpectrumLite's README configuration (nearest, 224x224), as a user runs it."""
    from click.testing import CliRunner

    from dspl.cli.main import cli

    span = CASES["readme"]["chunks"][0]
    hp_file = tmp_path / "hp_config.json"
    hp_file.write_text(json.dumps({key: [value] for key, value in CASES["readme"]["hp"].items()}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["plot", "-hc", str(hp_file), "-d", str(AUDIO / span["file"]),
                                      "-o", str(tmp_path / "plots"), "--format", "npy"])
    assert result.exit_code == 0, result.output
    first = np.load(tmp_path / "plots" / f"{Path(span['file']).stem}_0.npy")
    assert span["offset"] == 0 and first.shape == (224, 224, 3)
    assert_matches("readme", [first])
