"""Train tiny DeepSpectrumLite 1.0.2 models with its own `train` CLI and score audio with its own `predict`.

Not run by CI. Runs under a Python 3.8 venv with ``deepspectrumlite==1.0.2`` and ``protobuf<3.20`` (it does not
import dspl), e.g.::

    /work/dslvenv/bin/python tools/dsl_fixtures.py --audio EXAMPLE/audio --labels EXAMPLE/label.csv \
        --out tests/data/dsl_models

``EXAMPLE`` is what ``dspl example-data -o EXAMPLE`` writes. The script copies a few files per class and
partition into ``OUT/audio`` with their label file, then for every fixture writes ``OUT/<name>/``:
``hp_config.json`` (the grid DeepSpectrumLite trained with; its ``weights`` names the temporary weights file),
``model.h5`` (DeepSpectrumLite's Keras file less its optimizer state: the ``optimizer_weights`` group is left
out, which ``load_model(compile=False)`` never reads), ``dsl_predictions.csv`` (DeepSpectrumLite's ``predict``
CSV over ``OUT/audio``) and ``dsl_plots.npy`` (the inputs its predict gave the model, after the Keras input
scaling). ``OUT/class_config.json`` and ``OUT/label.csv`` are shared. densenet121's model.h5 stays at 29 MB:
that is its 7 million float32 weights, which no image size or ``num_units`` makes smaller.

Pretrained weights cannot be downloaded here, so the "weights file" fixtures start from a Keras application's
``save_weights`` (no top) taken from the base of a DeepSpectrumLite model trained from scratch on the same
audio first, its BatchNorm moving statistics set to those of the training plots (random weights, or statistics
that momentum 0.99-0.999 barely moved in a few steps, give every plot nearly the same scores).
"""

import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CLASSES = {"low": "Low tone", "high": "High tone", "noise": "Noise"}
PER_PARTITION = {"train": 4, "devel": 3, "test": 2}  # files per class and partition
IMAGE_SIZE = 32
WARMUP_EPOCHS = 3

# name -> (basemodel_name, weights kind, activation); weights kind: "file" (a save_weights file) or "" (scratch)
FIXTURES = {
    "mobilenet_v2": ("mobilenet_v2", "file", "relu"),
    "densenet121": ("densenet121", "file", "relu"),
    "squeezenet_v1": ("squeezenet_v1", "", "arelu"),
    "scratch_mobilenet_v2": ("mobilenet_v2", "", "relu"),
}

HP_BASE = {
    "label_parser": ["../lib/data/parser/ComParEParser.py:ComParEParser"],
    "model_name": ["TransferBaseModel"],
    "prediction_type": ["categorical"],
    "tb_experiment": ["fixture"],
    "tb_run_id": ["run"],
    "num_units": [16],
    "dropout": [0.1],
    "optimizer": ["adam"],
    "learning_rate": [0.001],
    "fine_learning_rate": [0.0001],
    "finetune_layer": [0.5],
    "loss": ["categorical_crossentropy"],
    "pre_epochs": [2],
    "epochs": [2],
    "batch_size": [8],
    "sample_rate": [16000],
    "normalize_audio": [True],
    "chunk_size": [1.0],
    "chunk_hop_size": [0.5],
    "stft_window_size": [0.032],
    "stft_hop_size": [0.016],
    "stft_fft_length": [0.032],
    "mel_scale": [True],
    "lower_edge_hertz": [0.0],
    "upper_edge_hertz": [8000.0],
    "num_mel_bins": [64],
    "num_mfccs": [0],
    "cep_lifter": [0],
    "db_scale": [True],
    "use_plot_images": [True],
    "color_map": ["viridis"],
    "image_width": [IMAGE_SIZE],
    "image_height": [IMAGE_SIZE],
    "resize_method": ["bilinear"],
    "anti_alias": [False],
    "sap_aug_a": [0.5],
    "sap_aug_s": [10],
    "augment_cutmix": [False],
    "augment_specaug": [False],
    "da_prob_min": [0.1],
    "da_prob_max": [0.5],
}


def select_audio(audio_dir, label_file, out):
    """Copy PER_PARTITION files per class and partition to OUT/audio; write OUT/label.csv; return its rows."""
    with open(label_file) as f:
        rows = list(csv.DictReader(f))
    chosen = []
    for partition, count in PER_PARTITION.items():
        for label in CLASSES:
            matching = [r for r in rows if r["filename"].startswith(partition) and r["label"] == label]
            chosen.extend(matching[:count])
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for row in chosen:
        shutil.copy(os.path.join(audio_dir, row["filename"]), out / "audio" / row["filename"])
    with open(out / "label.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "label", "duration_frames"])
        writer.writerows([r["filename"], r["label"], r["duration_frames"]] for r in chosen)
    (out / "class_config.json").write_text(json.dumps(CLASSES, indent=4))
    return chosen


def pipeline_plots(hp_file, out, data):
    """DeepSpectrumLite's DataPipeline plots (Keras-scaled, as its models take them) of the label rows in data
    (columns filename, label, duration_frames; files under OUT/audio), in order."""
    import tensorflow as tf
    from deepspectrumlite import DataPipeline, HyperParameterList

    hparams = HyperParameterList(config_file_name=str(hp_file)).get_values(iteration_no=0)
    pipeline = DataPipeline(name="plots", data_classes=CLASSES, enable_gpu=True, verbose=False,
                            enable_augmentation=False, hparams=hparams, run_id=0)
    pipeline.set_data(data)
    pipeline.set_filename_prepend(prepend_filename_str=str(out / "audio") + os.sep)
    pipeline.preprocess()
    dataset = pipeline.pipeline(cache=False, shuffle=False, drop_remainder=False)
    return tf.concat([x for x, _ in dataset], axis=0)


def training_plots(hp_file, out):
    """The training partition's plots."""
    import pandas as pd

    labels = pd.read_csv(out / "label.csv")
    return pipeline_plots(hp_file, out, labels[labels.filename.str.startswith("train")])


def scored_plots(hp_file, out):
    """The plots DeepSpectrumLite's predict makes of every file under OUT/audio, in its CSV's order."""
    import librosa
    import pandas as pd

    audio = str(out / "audio") + os.sep
    names = sorted(os.path.relpath(f, audio) for f in glob.glob(audio + "**/*.wav", recursive=True))
    frames = [librosa.load(audio + name, sr=None)[0].shape[0] for name in names]
    data = pd.DataFrame({"filename": names, "label": [next(iter(CLASSES))] * len(names), "duration_frames": frames})
    return pipeline_plots(hp_file, out, data).numpy()


def base_weights_file(model_file, plots, path):
    """save_weights of the backbone (the Keras application without its top) inside a DeepSpectrumLite model.h5,
    with its BatchNorm moving statistics set to those of the training plots (one pass with momentum 0)."""
    import tensorflow as tf
    from deepspectrumlite import ARelu, AugmentableModel

    model = tf.keras.models.load_model(str(model_file), compile=False,
                                       custom_objects={"AugmentableModel": AugmentableModel, "ARelu": ARelu})
    (base,) = [layer for layer in model.layers if isinstance(layer, tf.keras.Model)]
    for layer in base.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0
    base(plots, training=True)
    base.save_weights(str(path))


def without_optimizer(source, destination):
    """Copy a Keras .h5 without its optimizer_weights group (attributes and model weights unchanged)."""
    import h5py

    with h5py.File(source, "r") as src, h5py.File(destination, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src:
            if name != "optimizer_weights":
                src.copy(name, dst)


def run(cli, *args):
    """Run a DeepSpectrumLite command; stop with its output if it fails."""
    command = [cli, "-v", *args]
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if result.returncode != 0:
        sys.exit(result.stdout[-5000:] + "\nfailed: " + " ".join(command))


def train(cli, out, hp_file, train_dir):
    """DeepSpectrumLite's train on OUT's audio and labels; the path of the model.h5 it wrote."""
    run(cli, "train", "-d", str(out / "audio"), "-md", str(train_dir), "-hc", str(hp_file),
        "-cc", str(out / "class_config.json"), "-l", str(out / "label.csv"))
    return train_dir / "models" / "fixture" / "run_config_0" / "model.h5"


def warm_weights(basemodel_name, cli, out, work):
    """A weights file for basemodel_name: the backbone of a model trained from scratch for WARMUP_EPOCHS."""
    grid = dict(HP_BASE, basemodel_name=[basemodel_name], weights=[""], activation=["relu"],
                pre_epochs=[0], epochs=[WARMUP_EPOCHS])
    hp_file = work / (basemodel_name + "_warmup.json")
    hp_file.write_text(json.dumps(grid))
    path = work / (basemodel_name + "_notop.h5")
    trained = train(cli, out, hp_file, work / (basemodel_name + "_warmup"))
    base_weights_file(trained, training_plots(hp_file, out), path)
    return str(path)


def make_fixture(name, cli, out, work):
    """Train one fixture with DeepSpectrumLite's train and score OUT/audio with its predict."""
    basemodel_name, weights_kind, activation = FIXTURES[name]
    weights = warm_weights(basemodel_name, cli, out, work) if weights_kind == "file" else ""
    grid = dict(HP_BASE, basemodel_name=[basemodel_name], weights=[weights], activation=[activation])
    fixture = out / name
    fixture.mkdir(parents=True, exist_ok=True)
    hp_file = fixture / "hp_config.json"
    hp_file.write_text(json.dumps(grid, indent=4))
    trained = train(cli, out, hp_file, work / name)
    # DeepSpectrumLite's predict reads the configuration index from the folder name (`<anything>_<int>`).
    predict_dir = work / "predict" / (name + "_0")
    predict_dir.mkdir(parents=True)
    without_optimizer(trained, predict_dir / "model.h5")
    run(cli, "predict", "-md", str(predict_dir / "model.h5"), "-d", str(out / "audio"), "-hc", str(hp_file),
        "-cc", str(out / "class_config.json"))
    shutil.copy(predict_dir / "model.h5", fixture / "model.h5")
    shutil.copy(predict_dir / "test" / "test" / "test.chunks.predictions.csv", fixture / "dsl_predictions.csv")
    save_plots(fixture, out)


def save_plots(fixture, out):
    """OUT/<name>/dsl_plots.npy: DeepSpectrumLite's model inputs for its predict CSV (float32 [chunks, H, W, 3])."""
    import numpy as np

    np.save(fixture / "dsl_plots.npy", scored_plots(fixture / "hp_config.json", out).astype(np.float32))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", required=True, help="audio directory of `dspl example-data`")
    parser.add_argument("--labels", required=True, help="label.csv of `dspl example-data`")
    parser.add_argument("--out", required=True, help="fixture directory to write")
    parser.add_argument("--only", nargs="*", choices=sorted(FIXTURES), help="fixtures to make (default: all)")
    parser.add_argument("--plots-only", action="store_true", help="only (re)write dsl_plots.npy of OUT's fixtures")
    args = parser.parse_args()
    out = Path(args.out)
    if args.plots_only:
        for name in args.only or FIXTURES:
            save_plots(out / name, out)
        return
    cli = str(Path(sys.executable).with_name("deepspectrumlite"))
    select_audio(args.audio, args.labels, out)
    with tempfile.TemporaryDirectory(prefix="dsl-fixtures-") as tmp:
        for name in args.only or FIXTURES:
            make_fixture(name, cli, out, Path(tmp))


if __name__ == "__main__":
    main()
