"""Measure how far TensorFlow 2.19 itself lands from DeepSpectrumLite's reference plots (TF 2.5), per case.

DeepSpectrumLite's plots were made with TensorFlow 2.5; TensorFlow's FFT has changed since, and near-silent
bins (about 100 dB below the peak) come out a few dB apart, which moves some pixels of bands without energy.
That part of any difference is not dspl's. This script recomputes every case of tests/data/dsl_reference/
with plain ``tf.signal``/``tf.image`` code in the installed TensorFlow, following the README's "How a chunk
becomes a plot" (it imports no dspl code, so it measures TensorFlow alone), compares with DeepSpectrumLite's
arrays and writes ``drift.json`` beside them. tests/features/test_dsl_reference.py bounds each case's tolerance by
that drift plus a margin. Run it in the project's venv after tools/dsl_reference.py::

    .venv/bin/python tools/dsl_drift.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import tensorflow as tf

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "dsl_reference"
PEAK_LEVEL = 0.7079
IMAGE_STEP = 0.5      # plot pixels further apart than this (0..255 scale) count as moved
DB_STEP = 1e-3        # raw dB features further apart than this (dB) count as moved
RELATIVE_STEP = 1e-5  # raw power or MFCCs: this times the chunk's largest |value| (float32 rounding of an FFT
                      # or a DCT scales with the whole chunk's magnitude, not with each value's)


def _log10(x: tf.Tensor) -> tf.Tensor:
    return tf.math.log(x) / math.log(10.0)


def features(hparams: dict[str, Any], audio: np.ndarray) -> tf.Tensor:
    """[1, frames, features]: power, dB against 1.0, or MFCCs of one raw chunk (mel filter bank always,
    as DeepSpectrumLite applies it whatever mel_scale says)."""
    x = tf.constant(audio[None, :])
    if hparams["normalize_audio"]:
        x = x * (PEAK_LEVEL / tf.reduce_max(tf.abs(x)))
    rate = hparams["sample_rate"]
    stft = tf.signal.stft(x, int(hparams["stft_window_size"] * rate), int(hparams["stft_hop_size"] * rate),
                          int(hparams["stft_fft_length"] * rate))
    power = tf.abs(stft) ** 2
    weights = tf.signal.linear_to_mel_weight_matrix(hparams["num_mel_bins"], stft.shape[-1], rate,
                                                    hparams["lower_edge_hertz"], hparams["upper_edge_hertz"])
    mel = tf.tensordot(power, weights, 1)
    if hparams["num_mfccs"]:
        if hparams["db_scale"]:  # 20·log10(M / max M), as a power ratio with floor 1e-16 on the amplitudes
            log_mel = 10.0 * _log10(tf.maximum(1e-32, mel ** 2)) - 10.0 * _log10(
                tf.maximum(1e-32, tf.reduce_max(mel) ** 2))
        else:
            log_mel = tf.math.log(mel + 1e-6)
        mfccs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : hparams["num_mfccs"]]
        if hparams["cep_lifter"] > 0:
            n = tf.range(hparams["num_mfccs"], dtype=tf.float32)
            mfccs *= 1 + (hparams["cep_lifter"] / 2) * tf.sin(math.pi * n / hparams["cep_lifter"])
        return mfccs
    return 10.0 * _log10(tf.maximum(1e-16, mel)) if hparams["db_scale"] else mel


def plot(hparams: dict[str, Any], values: tf.Tensor) -> tf.Tensor:
    """[1, frames, features] -> [H, W, 3] on 0..255: min-max, colour table, resize, clip, quarter turn."""
    table = tf.constant(np.asarray(matplotlib.colormaps[hparams["color_map"]](np.arange(256))[:, :3], np.float32))
    low, high = tf.reduce_min(values), tf.reduce_max(values)
    position = 255.0 * (values - low) / (high - low)
    index = tf.clip_by_value(tf.floor(position), 0.0, 254.0)
    fraction = tf.clip_by_value(position - index, 0.0, 1.0)[..., None]
    lower = tf.gather(table, tf.cast(index, tf.int32))
    upper = tf.gather(table, tf.cast(index, tf.int32) + 1)
    colours = (1.0 - fraction) * lower + fraction * upper
    image = tf.image.resize(colours, (hparams["image_width"], hparams["image_height"]), method=hparams["resize_method"],
                            antialias=hparams["anti_alias"])
    return tf.image.rot90(tf.clip_by_value(image * 255.0, 0.0, 255.0), k=1)[0]


def output(hparams: dict[str, Any], audio: np.ndarray) -> np.ndarray:
    """What DeepSpectrumLite's graph gives for one raw chunk, computed by this TensorFlow."""
    values = features(hparams, audio)
    if hparams["use_plot_images"]:
        return plot(hparams, values).numpy()
    return values[0, :, :, None].numpy()


def feature_step(hparams: dict[str, Any], expected: np.ndarray) -> float:
    """The step raw features of a chunk are measured in: 1e-3 dB, or a share of the chunk's magnitude."""
    if hparams["db_scale"] and not hparams["num_mfccs"]:
        return DB_STEP
    return RELATIVE_STEP * float(np.abs(expected).max())


def drift(case: dict[str, Any]) -> dict[str, float]:
    """Share of values moved by more than one step, the largest move in steps and in the values' units."""
    arrays = np.load(REFERENCE / f"{case['name']}.npz")
    hparams = case["hp"]  # the hyper-parameters DeepSpectrumLite made the case with (its hparams dict)
    steps, moved = [], []
    for i in range(len(case["chunks"])):
        expected = arrays[f"dsl_{i}"]
        diff = np.abs(output(hparams, arrays[f"audio_{i}"]) - expected)
        step = feature_step(hparams, expected) if not hparams["use_plot_images"] else IMAGE_STEP
        steps.append((diff / step).ravel())
        moved.append(diff.ravel())
    steps_all = np.concatenate(steps)
    return {"share_over_step": float(np.mean(steps_all > 1.0)), "max_steps": float(steps_all.max()),
            "max_abs": float(np.concatenate(moved).max())}


def main() -> None:
    cases = json.loads((REFERENCE / "cases.json").read_text())["cases"]
    result = {"tensorflow": tf.__version__, "image_step": IMAGE_STEP, "db_step": DB_STEP,
              "relative_step": RELATIVE_STEP,
              "cases": {case["name"]: drift(case) for case in cases}}
    (REFERENCE / "drift.json").write_text(json.dumps(result, indent=1) + "\n")
    for name, d in result["cases"].items():
        print(f"{name:28s} {100 * d['share_over_step']:7.3f} %  max {d['max_steps']:.4g} steps, {d['max_abs']:.4g}")


if __name__ == "__main__":
    main()
