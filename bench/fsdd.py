"""Speaker-independent spoken-digit recognition on the Free Spoken Digit Dataset, trained from scratch.

Train on george, jackson and lucas (takes 0-39 of each digit; takes 40-49 are devel), test on nicolas.
Writes a ComParE-style label.csv (links named train_/devel_/test_...) and an hp config into a work
directory, runs the `train` workflow and prints the test accuracy and UAR (target: >= 90 %).
These defaults gave 42.4 % on nicolas (devel, i.e. unseen takes of the training speakers: 94 %) in 19 min
on 2 busy CPU cores: the gap is speaker generalisation, not fitting.

    python bench/fsdd.py [--data ../shared/data/fsdd/recordings] [--work-dir DIR] [--epochs 20]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import tempfile
import time
from pathlib import Path

from dspl.config import SCHEMA

TRAIN_SPEAKERS = ("george", "jackson", "lucas")
TEST_SPEAKER = "nicolas"
FILE_NAME = re.compile(r"(\d)_([a-z]+)_(\d+)\.wav")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"

HP = {
    "label_parser": "../lib/data/parser/ComParEParser.py:ComParEParser",
    "prediction_type": "categorical",
    "basemodel_name": "regnetx_002",
    "weights": "",
    "tb_experiment": "fsdd",
    "tb_run_id": "regnetx_002_scratch",
    "num_units": 128,
    "dropout": 0.25,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "finetune_layer": 1.0,
    "loss": "categorical_crossentropy",
    "activation": "relu",
    "pre_epochs": 0,
    "epochs": 20,
    "batch_size": 32,
    "seed": 42,
    "sample_rate": 8000,
    "normalize_audio": True,
    "chunk_size": 1.0,          # every file padded to 1 s (the few longer ones keep their first second)
    "chunk_hop_size": 1.0,
    "stft_window_size": 0.032,
    "stft_hop_size": 0.008,
    "stft_fft_length": 0.032,
    "mel_scale": True,
    "lower_edge_hertz": 0.0,
    "upper_edge_hertz": 4000.0,
    "num_mel_bins": 64,
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
    "augment_cutmix": False,
    "augment_specaug": True,
    "specaug_freq_mask_num": 2,
    "specaug_time_mask_num": 2,
}


def write_split(data_dir: Path, work_dir: Path, devel_from_take: int) -> tuple[Path, Path, dict[str, int]]:
    """Link the recordings as train_/devel_/test_ files and write label.csv; returns (audio dir, label file, counts)."""
    audio = work_dir / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows, counts = [], {"train": 0, "devel": 0, "test": 0}
    for path in sorted(data_dir.glob("*.wav")):
        match = FILE_NAME.fullmatch(path.name)
        if not match:
            continue
        digit, speaker, take = match.group(1), match.group(2), int(match.group(3))
        if speaker == TEST_SPEAKER:
            partition = "test"
        elif speaker in TRAIN_SPEAKERS:
            partition = "devel" if take >= devel_from_take else "train"
        else:
            continue
        name = f"{partition}_{path.name}"
        link = audio / name
        if not link.exists():
            link.symlink_to(path.resolve())
        rows.append((name, digit))
        counts[partition] += 1
    label_file = work_dir / "label.csv"
    with label_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("filename", "label"))
        writer.writerows(rows)
    return audio, label_file, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FSDD recordings directory")
    parser.add_argument("--work-dir", type=Path, default=None, help="where links, configs and models go")
    parser.add_argument("--epochs", type=int, default=HP["epochs"])
    parser.add_argument("--backbone", default=HP["basemodel_name"])
    parser.add_argument("--image-size", type=int, default=HP["image_width"])
    parser.add_argument("--devel-from-take", type=int, default=40, help="takes from here on are devel")
    parser.add_argument("--accelerator", default="auto")
    args = parser.parse_args()

    from dspl.workflows.train import train

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="dspl_fsdd_"))
    audio, label_file, counts = write_split(args.data, work_dir, args.devel_from_take)
    hp = {**HP, "epochs": args.epochs, "basemodel_name": args.backbone, "tb_run_id": f"{args.backbone}_scratch",
          "image_width": args.image_size, "image_height": args.image_size}
    assert set(hp) <= set(SCHEMA)
    hp_config, class_config = work_dir / "hp_config.json", work_dir / "class_config.json"
    hp_config.write_text(json.dumps({k: [v] for k, v in hp.items()}, indent=2), encoding="utf-8")
    class_config.write_text(json.dumps({str(d): f"digit {d}" for d in range(10)}, indent=2), encoding="utf-8")
    print(f"work dir {work_dir}: {counts['train']} train, {counts['devel']} devel, {counts['test']} test files")

    start = time.perf_counter()
    result = train(audio, work_dir / "output", hp_config, class_config, label_file,
                   trainer_options={"accelerator": args.accelerator})[0]
    minutes = (time.perf_counter() - start) / 60
    test = result["test"]
    print(f"FSDD speaker-independent (test speaker {TEST_SPEAKER}), {args.backbone} from scratch, "
          f"{args.image_size}x{args.image_size} plots, {args.epochs} epochs, {minutes:.1f} min: "
          f"accuracy {100 * test['test/accuracy']:.1f} %, UAR {100 * test['test/uar']:.1f} %")


if __name__ == "__main__":
    main()
