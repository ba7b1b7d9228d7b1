"""Write DeepSpectrumLite 1.0.2's own spectrogram plots for a grid of configurations (tests/data/dsl_reference/).

dspl promises the plots DeepSpectrumLite made (the README, "How a chunk becomes a plot"). This script asks the
original, through its public ``DataPipeline.generate_spectrogram``, for the plots (or raw features) of a few
chunks of real audio under ~50 configurations that each vary one or two keys around a base configuration,
and stores them with the raw chunks they came from. tests/features/test_dsl_reference.py compares dspl against them.
It is not run by CI: it needs DeepSpectrumLite, which runs on Python 3.8 with TensorFlow 2.5 only::

    PYENV_VERSION=3.8.18 python3.8 -m venv /tmp/dslvenv
    /tmp/dslvenv/bin/pip install deepspectrumlite==1.0.2 "protobuf<3.20"
    # once, to (re)make the short recordings in tests/data/dsl_audio/ (FSDD and `dspl example-data` audio):
    /tmp/dslvenv/bin/python tools/dsl_reference.py --fsdd ../shared/data/fsdd/recordings --example /tmp/ex/audio
    # the reference arrays from those recordings:
    /tmp/dslvenv/bin/python tools/dsl_reference.py

Output: one compressed ``<case>.npz`` per case with ``audio_<i>`` (the raw float32 chunk or file, samples
as 16-bit PCM / 32768, before any peak normalisation) and ``dsl_<i>`` (DeepSpectrumLite's output for it:
plots [H, W, 3] on 0..255 or raw features [frames, features, 1], float32), and ``cases.json`` with every
case's full hyper-parameters, audio file and chunk offsets, and what was learnt about DeepSpectrumLite.
It imports no dspl code (dspl needs Python >= 3.10) and copies none of DeepSpectrumLite's.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
AUDIO_DIR = ROOT / "tests" / "data" / "dsl_audio"
OUT_DIR = ROOT / "tests" / "data" / "dsl_reference"
PEAK_LEVEL = 0.7079  # DeepSpectrumLite's file reader scales each chunk's peak |sample| to this

# DeepSpectrumLite's README configuration (src/deepspectrumlite/cli/config/hp_config.json), one value per key,
# with basemodel_name 'none' so that the plots are not scaled for a backbone (0..255 out).
README_HP = {
    "label_parser": "../lib/data/parser/ComParEParser.py:ComParEParser", "model_name": "TransferBaseModel",
    "prediction_type": "categorical", "basemodel_name": "none", "weights": "imagenet",
    "tb_experiment": "densenet_exp", "tb_run_id": "densenet121_run", "num_units": 512, "dropout": 0.25,
    "optimizer": "adadelta", "learning_rate": 0.001, "fine_learning_rate": 0.0001, "finetune_layer": 0.7,
    "loss": "categorical_crossentropy", "activation": "arelu", "output_activation": "softmax", "pre_epochs": 40,
    "epochs": 100, "batch_size": 32, "sample_rate": 16000, "chunk_size": 4.0, "chunk_hop_size": 2.0,
    "normalize_audio": False, "stft_window_size": 0.128, "stft_hop_size": 0.064, "stft_fft_length": 0.128,
    "mel_scale": True, "lower_edge_hertz": 0.0, "upper_edge_hertz": 8000.0, "num_mel_bins": 128, "num_mfccs": 0,
    "cep_lifter": 0, "db_scale": True, "use_plot_images": True, "color_map": "viridis", "image_width": 224,
    "image_height": 224, "resize_method": "nearest", "anti_alias": False, "sap_aug_a": 0.5, "sap_aug_s": 10,
    "augment_cutmix": True, "augment_specaug": True, "da_prob_min": 0.1, "da_prob_max": 0.5, "cutmix_min": 0.075,
    "cutmix_max": 0.25, "specaug_freq_min": 0.1, "specaug_freq_max": 0.3, "specaug_time_min": 0.1,
    "specaug_time_max": 0.3, "specaug_freq_mask_num": 1, "specaug_time_mask_num": 1,
}

# The base of the grid: 1 s chunks at 16 kHz, 512-sample frames, 128 mel bands in dB, small non-square plots
# whose feature axis is downsampled (so anti_alias matters) and whose time axis is upsampled.
BASE = dict(README_HP, chunk_size=1.0, chunk_hop_size=0.5, stft_window_size=0.032, stft_hop_size=0.016,
            stft_fft_length=0.032, image_width=96, image_height=64, resize_method="bilinear", anti_alias=True)

RATE_8K = dict(sample_rate=8000, upper_edge_hertz=4000.0, num_mel_bins=64)
RATE_44K = dict(sample_rate=44100, chunk_size=0.5, chunk_hop_size=0.5, upper_edge_hertz=22050.0)
WHOLE = dict(RATE_8K, chunk_size=-1.0)
METHODS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "gaussian", "mitchellcubic")


def _cases() -> List[Tuple[str, Dict, str]]:
    """(name, hyper-parameter overrides of BASE, audio file) for every case of the grid."""
    cases = [("base", {}, "example_16k.wav")]
    cases += [("cmap-" + name, {"color_map": name}, "example_16k.wav")
              for name in ("cividis", "inferno", "magma", "plasma")]
    cases += [("resize-{}-{}".format(method, "aa" if aa else "noaa"), {"resize_method": method, "anti_alias": aa},
               "example_16k.wav") for method in METHODS for aa in (True, False) if (method, aa) != ("bilinear", True)]
    cases += [
        ("mel-power", {"db_scale": False}, "example_16k.wav"),
        ("linear-db", {"mel_scale": False}, "example_16k.wav"),
        ("mfcc-db", {"num_mfccs": 20}, "example_16k.wav"),
        ("mfcc-db-lifter22", {"num_mfccs": 20, "cep_lifter": 22}, "example_16k.wav"),
        ("mfcc-ln", {"num_mfccs": 20, "db_scale": False}, "example_16k.wav"),
        ("mfcc-ln-lifter22", {"num_mfccs": 20, "db_scale": False, "cep_lifter": 22, "color_map": "magma"},
         "example_16k.wav"),
        ("raw-mel-db", {"use_plot_images": False}, "example_16k.wav"),
        ("raw-mel-power", {"use_plot_images": False, "db_scale": False}, "example_16k.wav"),
        ("raw-mfcc-db-lifter22", {"use_plot_images": False, "num_mfccs": 20, "cep_lifter": 22}, "example_16k.wav"),
        ("raw-mfcc-ln", {"use_plot_images": False, "num_mfccs": 13, "db_scale": False}, "example_16k.wav"),
        ("size-w64-h160", {"image_width": 64, "image_height": 160}, "example_16k.wav"),
        ("size-w160-h48-bicubic", {"image_width": 160, "image_height": 48, "resize_method": "bicubic",
                                   "anti_alias": False}, "example_16k.wav"),
        ("fft-padded-pow2", {"stft_fft_length": 0.064}, "example_16k.wav"),
        ("fft-nonpow2", {"stft_window_size": 0.025, "stft_hop_size": 0.01, "stft_fft_length": 0.025},
         "example_16k.wav"),
        ("fft-padded-nonpow2", {"stft_window_size": 0.025, "stft_hop_size": 0.01, "stft_fft_length": 0.04,
                                "resize_method": "nearest", "anti_alias": False}, "example_16k.wav"),
        ("mel-edges-40", {"lower_edge_hertz": 60.0, "upper_edge_hertz": 7600.0, "num_mel_bins": 40,
                          "color_map": "plasma"}, "example_16k.wav"),
        ("normalize", {"normalize_audio": True}, "example_16k.wav"),
        ("normalize-8k-nearest", dict(RATE_8K, normalize_audio=True, resize_method="nearest", anti_alias=False),
         "fsdd_8k.wav"),
        ("sr8k", RATE_8K, "fsdd_8k.wav"),
        ("sr8k-mfcc-lanczos3", dict(RATE_8K, num_mfccs=13, cep_lifter=22, resize_method="lanczos3"), "fsdd_8k.wav"),
        ("sr44k-nonpow2", dict(RATE_44K, stft_window_size=0.025, stft_hop_size=0.0125, stft_fft_length=0.05),
         "fsdd_44k.wav"),
        ("sr44k-pow2-nearest", dict(RATE_44K, stft_window_size=0.02322, stft_hop_size=0.01161,
                                    stft_fft_length=0.04644, lower_edge_hertz=50.0, upper_edge_hertz=16000.0,
                                    resize_method="nearest", anti_alias=False), "fsdd_44k.wav"),
        ("whole-bilinear", WHOLE, "fsdd_whole_a.wav,fsdd_whole_b.wav"),
        ("whole-nearest", dict(WHOLE, resize_method="nearest", anti_alias=False, color_map="inferno"),
         "fsdd_whole_a.wav,fsdd_whole_b.wav"),
        ("whole-raw", dict(WHOLE, use_plot_images=False), "fsdd_whole_a.wav,fsdd_whole_b.wav"),
        ("readme", README_HP, "example_16k.wav"),
        # examples/hp_config.json of DeepSpectrumLite's repository: the README configuration, 2 s chunks, normalised
        ("readme-examples", dict(README_HP, chunk_size=2.0, chunk_hop_size=1.0, normalize_audio=True),
         "example_16k.wav"),
    ]
    return cases


def make_audio(fsdd: Path, example: Path) -> None:
    """Write the short 16-bit recordings the cases use into tests/data/dsl_audio/.

    fsdd_8k.wav: 2 s of FSDD digits (8 kHz speech); fsdd_44k.wav: 1 s of other digits resampled to
    44.1 kHz; fsdd_whole_{a,b}.wav: two single digits of different lengths (whole-file mode);
    example_16k.wav: 4 s of `dspl example-data` audio (a low tone, a high tone, noise).
    """
    from scipy.signal import resample_poly

    def joined(directory: Path, names: List[str], rate: int, up: int = 1, down: int = 1) -> np.ndarray:
        parts = []
        for name in names:
            samples, file_rate = sf.read(str(directory / name), dtype="float64")
            assert file_rate == rate, (name, file_rate)
            parts.append(resample_poly(samples, up, down) if up != down else samples)
        return np.concatenate(parts)

    AUDIO_DIR.mkdir(parents=True, exist_ok=True)
    digits = ["{}_{}_5.wav".format(d, s) for d, s in zip(range(10), ["george", "jackson", "lucas", "nicolas"] * 3)]
    outputs = {
        "fsdd_8k.wav": (joined(fsdd, digits[:6], 8000)[:16000], 8000),
        "fsdd_44k.wav": (joined(fsdd, digits[6:], 8000, 441, 80)[:44100], 44100),
        "fsdd_whole_a.wav": (joined(fsdd, ["7_nicolas_5.wav"], 8000), 8000),
        "fsdd_whole_b.wav": (joined(fsdd, ["7_george_5.wav"], 8000), 8000),
        "example_16k.wav": (joined(example, ["test_001.wav", "test_003.wav", "test_005.wav"], 16000)[:64000], 16000),
    }
    for name, (samples, rate) in outputs.items():
        sf.write(str(AUDIO_DIR / name), np.clip(samples, -1.0, 32767 / 32768), rate, subtype="PCM_16")


def read_wav(name: str) -> np.ndarray:
    """float32 samples as DeepSpectrumLite's reader (tf.audio.decode_wav) gives them: int16 / 32768."""
    samples, _ = sf.read(str(AUDIO_DIR / name), dtype="int16")
    return samples.astype(np.float32) / 32768.0


def peak_normalised(audio: np.ndarray) -> np.ndarray:
    """The chunk DeepSpectrumLite's reader hands on with normalize_audio: x·(0.7079 / max|x|), in TF float32."""
    import tensorflow as tf

    x = tf.constant(audio)
    return (x * (PEAK_LEVEL / tf.reduce_max(tf.abs(x)))).numpy()


def dsl_output(hparams: Dict, audio: np.ndarray) -> np.ndarray:
    """DeepSpectrumLite's generate_spectrogram for one chunk [N], run as its tf.data pipeline runs it (graph)."""
    import tensorflow as tf
    from deepspectrumlite import DataPipeline

    pipeline = DataPipeline(name="reference", data_classes={"a": "A"}, hparams=hparams, run_id=0)
    data = tf.data.Dataset.from_tensors((audio[None, :], tf.constant([[1.0]])))
    (images, _), = list(data.map(pipeline.generate_spectrogram))
    return images.numpy()[0]


def chunks_of(hparams: Dict, files: List[str]) -> Tuple[List[np.ndarray], List[Tuple[str, int, int]]]:
    """At most two chunks of one file (chunk mode) or each file whole (chunk_size <= 0), with (file, offset, N)."""
    if hparams["chunk_size"] <= 0:
        audios = [read_wav(name) for name in files]
        return audios, [(name, 0, len(a)) for name, a in zip(files, audios)]
    samples = read_wav(files[0])
    rate = hparams["sample_rate"]
    length, hop = int(hparams["chunk_size"] * rate), int(hparams["chunk_hop_size"] * rate)
    offsets = [o for o in (0, hop) if o + length <= len(samples)]
    return [samples[o:o + length] for o in offsets], [(files[0], o, length) for o in offsets]


def pipeline_outputs(hparams: Dict, files: List[str]) -> List[np.ndarray]:
    """What DeepSpectrumLite's full training pipeline (file reading and all) makes of the files, in order."""
    import pandas as pd
    from deepspectrumlite import DataPipeline

    pipeline = DataPipeline(name="check", data_classes={"a": "A"}, hparams=hparams, run_id=0)
    pipeline.set_data(pd.DataFrame({"filename": files, "label": ["a"] * len(files),
                                    "duration_frames": [len(read_wav(f)) for f in files]}))
    pipeline.set_filename_prepend(str(AUDIO_DIR) + os.sep)
    return [x.numpy() for x, _ in pipeline.pipeline(shuffle=False, cache=False, drop_remainder=False).unbatch()]


def check_against_pipeline(hparams: Dict, files: List[str], outputs: List[np.ndarray]) -> Union[float, str]:
    """Largest |difference| between our per-chunk calls and DeepSpectrumLite's own pipeline on the same files,
    or the error its pipeline stops with."""
    import tensorflow as tf

    try:
        produced = pipeline_outputs(hparams, files)[:len(outputs)]
    except tf.errors.InvalidArgumentError as error:
        return "its pipeline fails: " + error.message.split(".")[0]
    return max(float(np.abs(a - b).max()) for a, b in zip(produced, outputs))


def batch_effect(hparams: Dict, chunks: List[np.ndarray]) -> float:
    """Largest |difference| when the chunks go through generate_spectrogram as one batch instead of one by one."""
    import tensorflow as tf
    from deepspectrumlite import DataPipeline

    pipeline = DataPipeline(name="batch", data_classes={"a": "A"}, hparams=hparams, run_id=0)
    stacked = np.stack([peak_normalised(c) if hparams["normalize_audio"] else c for c in chunks])
    data = tf.data.Dataset.from_tensors((stacked, tf.ones([len(chunks), 1])))
    (batched, _), = list(data.map(pipeline.generate_spectrogram))
    single = np.stack([dsl_output(hparams, c) for c in stacked])
    return float(np.abs(batched.numpy() - single).max())


def write_references() -> None:
    """Run every case through DeepSpectrumLite and write the .npz files and cases.json."""
    import tensorflow as tf

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    entries, checks = [], {}
    for name, overrides, audio in _cases():
        hparams = dict(BASE, **overrides)
        files = audio.split(",")
        chunks, spans = chunks_of(hparams, files)
        inputs = [peak_normalised(c) if hparams["normalize_audio"] else c for c in chunks]
        outputs = [dsl_output(hparams, x) for x in inputs]
        arrays = {"audio_{}".format(i): c for i, c in enumerate(chunks)}
        arrays.update({"dsl_{}".format(i): o.astype(np.float32) for i, o in enumerate(outputs)})
        np.savez_compressed(str(OUT_DIR / (name + ".npz")), **arrays)
        entries.append({"name": name, "hp": hparams, "chunks": [{"file": f, "offset": o, "num_samples": n}
                                                           for f, o, n in spans],
                        "shapes": [list(o.shape) for o in outputs]})
        if name in ("normalize", "whole-bilinear", "whole-raw", "readme-examples"):
            checks[name] = check_against_pipeline(hparams, files, outputs)
        if name in ("mfcc-db", "base"):
            checks[name + " batched"] = batch_effect(hparams, chunks)
        print(name, [o.shape for o in outputs], flush=True)
    linear, mel = (np.load(str(OUT_DIR / (n + ".npz"))) for n in ("linear-db", "base"))
    notes = {
        "input": "audio_<i> is the raw chunk (16-bit PCM / 32768, as tf.audio.decode_wav reads it); with "
                 "normalize_audio DeepSpectrumLite was given audio·(0.7079 / max|audio|) computed in TF float32, "
                 "as its file reader does before generate_spectrogram. dspl gets the raw chunk.",
        "calls": "one chunk per generate_spectrogram call, inside a tf.data map as its training pipeline runs it",
        "output": "plots: [image_height, image_width, 3] on 0..255 (basemodel_name 'none': no backbone scaling); "
                  "use_plot_images false: the feature matrix [frames, features, 1] as it is (dB against 1.0, "
                  "power, or MFCCs), what DeepSpectrumLite feeds its model then.",
        "mel_scale": "DeepSpectrumLite 1.0.2 never reads mel_scale: it always applies the mel filter bank. Case "
                     "'linear-db' (mel_scale false) equals 'base' exactly: {}.".format(
                         all(np.array_equal(linear[k], mel[k]) for k in mel.files)),
        "chunking": "chunk mode: at most two chunks per case, at offsets 0 and chunk_hop_size; chunk_size <= 0: each "
                    "file whole, one plot per file from its own samples and frames (its reader returns the whole "
                    "file and its pipeline batches such files one at a time). Only chunk_size < 0 works there: with "
                    "chunk_size 0 the chunk length is 0, not < 0, so its pipeline batches whole files of different "
                    "lengths together and fails. Whole-file raw features fail in its pipeline as well (its final "
                    "batching cannot stack different frame counts); generate_spectrogram itself handles them.",
        "raw_feature_shape": "with use_plot_images false DeepSpectrumLite's model input shape is "
                             "(frames, num_mfccs, 1) even without MFCCs (num_mfccs 0), while its pipeline yields "
                             "(frames, num_mel_bins, 1): only its MFCC raw-feature models build.",
        "batch": "MFCCs with db_scale reference the largest mel value of the whole generate_spectrogram batch "
                 "(tf.reduce_max over all axes), so a chunk's plot depends on its batch mates; other features do "
                 "not. These references are made per chunk.",
        "pipeline_check_max_abs_diff": checks,
    }
    meta = {"deepspectrumlite": "1.0.2", "tensorflow": tf.__version__, "notes": notes, "cases": entries}
    (OUT_DIR / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fsdd", type=Path, help="FSDD recordings folder: (re)make tests/data/dsl_audio/ first")
    parser.add_argument("--example", type=Path, help="audio folder of `dspl example-data` (with --fsdd)")
    args = parser.parse_args(argv)
    if args.fsdd:
        make_audio(args.fsdd, args.example)
    write_references()


if __name__ == "__main__":
    main()
