"""A small deterministic example data set: three synthetic sound classes, labels and ready-to-use configs.

The classes are clearly apart on a mel spectrogram yet vary per file (pitch, vibrato, duration, loudness,
background noise, all drawn from a seeded numpy Generator):
"low" harmonic tones at 150-400 Hz with vibrato, "high" tones at 1.5-3 kHz, "noise" band-limited noise bursts.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from dspl.errors import DsplError
from dspl.files import clean_stale, prepare_output_dir, remove, staging_dir

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
DURATION_RANGE = (1.5, 3.0)
CLASSES = {"low": "Low tone", "high": "High tone", "noise": "Noise"}
REGRESSION_CLASSES = {"pitch": "Pitch"}
# The regression target: log of a file's characteristic frequency, mapped from this range onto [0, 1].
TARGET_RANGE_HZ = (100.0, 4000.0)

# The example configuration (one value per key; written as one-element lists).
EXAMPLE_HP: dict[str, Any] = {
    "label_parser": "../lib/data/parser/ComParEParser.py:ComParEParser",
    "model_name": "TransferBaseModel",
    "prediction_type": "categorical",
    "basemodel_name": "mobilenetv3_small_050",
    "weights": "",
    "tb_experiment": "example",
    "tb_run_id": "run",
    "num_units": 32,
    "dropout": 0.2,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "fine_learning_rate": None,
    "finetune_layer": 1.0,
    "loss": "categorical_crossentropy",
    "activation": "relu",
    "output_activation": None,
    "pre_epochs": 0,
    "epochs": 6,
    "batch_size": 16,
    "seed": 42,
    "sample_rate": SAMPLE_RATE,
    "normalize_audio": True,
    "chunk_size": 1.0,
    "chunk_hop_size": 0.5,
    "stft_window_size": 0.032,
    "stft_hop_size": 0.016,
    "stft_fft_length": 0.032,
    "mel_scale": True,
    "lower_edge_hertz": 0.0,
    "upper_edge_hertz": 8000.0,
    "num_mel_bins": 64,
    "num_mfccs": 0,
    "cep_lifter": 0,
    "db_scale": True,
    "use_plot_images": True,
    "color_map": "viridis",
    "image_width": 64,
    "image_height": 64,
    "resize_method": "bilinear",
    "anti_alias": False,
    "sap_aug_a": 0.5,
    "sap_aug_s": 10.0,
    "augment_cutmix": True,
    "augment_specaug": True,
    "da_prob_min": 0.1,
    "da_prob_max": 0.5,
    "cutmix_min": 0.075,
    "cutmix_max": 0.25,
    "specaug_freq_min": 0.1,
    "specaug_freq_max": 0.3,
    "specaug_time_min": 0.1,
    "specaug_time_max": 0.3,
    "specaug_freq_mask_num": 1,
    "specaug_time_mask_num": 1,
}
REGRESSION_OVERRIDES: dict[str, Any] = {
    "prediction_type": "regression",
    "optimizer": "ftrl",
    "loss": "mae",
    "output_activation": "sigmoid",
    "tb_experiment": "example_regression",
}


def _envelope(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random linear attack and release so files start and end smoothly."""
    attack, release = (int(rng.uniform(0.01, 0.1) * SAMPLE_RATE) for _ in range(2))
    envelope = np.ones(n)
    envelope[:attack] = np.linspace(0.0, 1.0, attack)
    envelope[n - release:] = np.minimum(envelope[n - release:], np.linspace(1.0, 0.0, release))
    return envelope


def _tone(rng: np.random.Generator, n: int, f_range: tuple[float, float], harmonics: int,
          decay: float) -> tuple[np.ndarray, float]:
    """A harmonic tone with vibrato; returns the signal and its fundamental frequency."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = float(np.exp(rng.uniform(np.log(f_range[0]), np.log(f_range[1]))))
    depth, rate = rng.uniform(0.005, 0.03), rng.uniform(4.0, 7.0)
    frequency = f0 * (1.0 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(frequency) / SAMPLE_RATE
    signal = np.zeros(n)
    for k in range(1, harmonics + 1):
        if k * f0 * (1 + depth) < 0.45 * SAMPLE_RATE:
            signal += rng.uniform(0.4, 1.0) / k ** decay * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return signal * _envelope(rng, n), f0


def _noise_bursts(rng: np.random.Generator, n: int) -> tuple[np.ndarray, float]:
    """Bursts of band-limited noise, one per 0.6 s or so; returns the signal and the band's centre frequency."""
    low = rng.uniform(500.0, 2000.0)
    high = min(low + rng.uniform(2000.0, 5000.0), 7500.0)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    frequencies = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    spectrum[(frequencies < low) | (frequencies > high)] = 0.0
    band = np.fft.irfft(spectrum, n)
    gate = np.zeros(n)
    segments = max(2, int(n / (0.6 * SAMPLE_RATE)))  # one burst per segment: every chunk hears noise
    bounds = np.linspace(0, n, segments + 1).astype(int)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        length = int(rng.uniform(0.5, 0.9) * (stop - start))
        offset = start + int(rng.integers(0, stop - start - length + 1))
        gate[offset:offset + length] = np.hanning(length)
    return band * gate, float(np.sqrt(low * high))


def _sound(rng: np.random.Generator, label: str) -> tuple[np.ndarray, float]:
    """One file of a class: signal scaled to a random peak, with background noise; and its target."""
    n = int(rng.uniform(*DURATION_RANGE) * SAMPLE_RATE)
    if label == "low":
        signal, frequency = _tone(rng, n, (150.0, 400.0), harmonics=5, decay=1.5)
    elif label == "high":
        signal, frequency = _tone(rng, n, (1500.0, 3000.0), harmonics=2, decay=2.0)
    else:
        signal, frequency = _noise_bursts(rng, n)
    peak = rng.uniform(0.2, 0.9)
    signal = signal / np.max(np.abs(signal)) * peak
    signal += rng.standard_normal(n) * peak * rng.uniform(0.003, 0.03)
    low, high = np.log(TARGET_RANGE_HZ[0]), np.log(TARGET_RANGE_HZ[1])
    target = float(np.clip((np.log(frequency) - low) / (high - low), 0.0, 1.0))
    return np.clip(signal, -1.0, 1.0).astype(np.float32), round(target, 4)


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=4) + "\n").encode("utf-8")


def _csv_bytes(rows: list[tuple[Any, ...]]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(("filename", "label", "duration_frames"))
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def example_hp(prediction_type: str = "categorical") -> dict[str, Any]:
    """The example configuration (one value per key) for 'categorical' or 'regression'."""
    return {**EXAMPLE_HP, **(REGRESSION_OVERRIDES if prediction_type == "regression" else {})}


def _counts(files_per_class: int) -> dict[str, int]:
    """Files per class of each partition: devel and test get a third of the training files (at least one) each."""
    third = max(1, round(files_per_class / 3))
    return {"train": files_per_class, "devel": third, "test": third}


def _example_files(files_per_class: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """Every file of the example set, its path under the output directory and its bytes: the audio, then labels
    and configs (which need every file's length). The same arguments give the same bytes."""
    rng = np.random.default_rng(seed)
    labels, targets = [], []
    for partition, count in _counts(files_per_class).items():
        order = rng.permutation(np.repeat(np.arange(len(CLASSES)), count))
        width = max(3, len(str(len(order))))
        for number, class_index in enumerate(order, 1):
            label = list(CLASSES)[class_index]
            samples, target = _sound(rng, label)
            name = f"{partition}_{number:0{width}d}.wav"
            wav = io.BytesIO()
            sf.write(wav, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
            yield f"audio/{name}", wav.getvalue()
            labels.append((name, label, len(samples)))
            targets.append((name, target, len(samples)))
    yield "label.csv", _csv_bytes(labels)
    yield "regression_label.csv", _csv_bytes(targets)
    for prefix, prediction_type, classes in (("", "categorical", CLASSES),
                                             ("regression_", "regression", REGRESSION_CLASSES)):
        yield f"{prefix}hp_config.json", _json_bytes({k: [v] for k, v in example_hp(prediction_type).items()})
        yield f"{prefix}class_config.json", _json_bytes(classes)


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file (or a link to one) with exactly these bytes; only such a file is opened
    (a FIFO would block the reader)."""
    try:
        return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _write_new(out_dir: Path, files: Iterable[tuple[str, bytes]]) -> tuple[int, int]:
    """Write the files that are not under ``out_dir`` yet and leave those that hold their bytes already (an
    earlier run's); returns how many it wrote and how many it left.

    A file with other bytes is not the example's to replace (a user's labels, say): a DsplError names the first,
    and nothing is written. New files are staged in a hidden folder of ``out_dir`` until every file is checked,
    so memory does not grow with the data set.
    """
    staging, staged, kept = staging_dir(out_dir), [], 0
    try:
        for name, data in files:
            if os.path.lexists(out_dir / name):
                if not _holds(out_dir / name, data):
                    raise DsplError(f"{out_dir / name}: exists with other content than the example data; nothing "
                                    "was written: choose another output directory (-o) or move the file away")
                kept += 1
                continue
            (staging / name).parent.mkdir(exist_ok=True)
            (staging / name).write_bytes(data)
            staged.append(name)
        for name in staged:
            (out_dir / name).parent.mkdir(exist_ok=True)
            os.replace(staging / name, out_dir / name)
    finally:
        remove(staging)
    return len(staged), kept


def write_example_data(out_dir: str | Path, files_per_class: int = 24, seed: int = 0) -> Path:
    """Write the example set under out_dir and return out_dir; the same arguments give the same bytes.

    Layout: audio/{train,devel,test}_NNN.wav (16 kHz mono PCM-16), label.csv, regression_label.csv,
    hp_config.json + class_config.json (categorical), regression_hp_config.json + regression_class_config.json.
    `files_per_class` training files per class; devel and test get a third of that (at least one) each.
    It never replaces a file: one that holds what it would write (a run with the same arguments wrote it) is left
    as it is, so the quick start can run again; one that holds anything else stops it before it writes anything.
    """
    out_dir = prepare_output_dir(out_dir, "output directory (-o)")
    clean_stale(out_dir)
    try:
        written, kept = _write_new(out_dir, _example_files(files_per_class, seed))
    except OSError as exc:
        raise DsplError(f"{out_dir}: cannot write the example data: {exc.strerror}") from None
    logger.info("wrote %d example files (per class: %s) to %s; %d identical ones were there already", written,
                ", ".join(f"{c} {p}" for p, c in _counts(files_per_class).items()), out_dir, kept)
    return out_dir
