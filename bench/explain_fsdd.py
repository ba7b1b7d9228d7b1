"""`dspl explain` and `dspl report` on real speech: the Free Spoken Digit Dataset's unseen test speaker.

Trains bench/fsdd.py's configuration (fewer epochs by default), or takes a model from --model, then runs the
commands as a user would - `dspl explain` with every method on one recording per digit of the test speaker, and
`dspl report -d -l` - and checks that each wrote what it promises: a PNG and an NPY map at plot resolution per
chunk, a summary PNG per file, regions.csv with the top regions of every chunk, and an index.html whose every
image exists and opens. It prints, per method, the seconds per chunk, how much of the attribution lies on
the frames that hold speech (within SPEECH_DB of the recording's loudest frame; FSDD recordings are padded to
the 1 s chunk, so most of each plot is silence) against those frames' share of the plot and how many of the
recordings the model names right, then the report's contents. Figures go to bench/RESULTS.md.

    python bench/explain_fsdd.py [--data ../shared/data/fsdd/recordings] [--work-dir DIR] [--epochs 15]
                                 [--model MODEL.h5] [--methods occlusion gradcam ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from fsdd import DEFAULT_DATA, FILE_NAME, SETTINGS, TEST_SPEAKER, write_split
from PIL import Image

from dspl.explain.methods import METHODS

SPEECH_DB = 30.0  # a frame holds speech when its RMS is within this many dB of the recording's loudest frame


def dspl(*arguments: str) -> float:
    """Run one dspl command as a user would (the venv's console script); returns its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dspl"), *arguments], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def train_model(data: Path, work_dir: Path, epochs: int) -> tuple[Path, Path, Path]:
    """bench/fsdd.py's split and configuration, trained by `dspl train`; returns (model, audio dir, label file)."""
    audio, label_file, _ = write_split(data, work_dir, devel_from_take=40)
    hp_config, class_config = work_dir / "hp_config.json", work_dir / "class_config.json"
    grid = {key: [value] for key, value in {**SETTINGS, "epochs": epochs}.items()}
    hp_config.write_text(json.dumps(grid), encoding="utf-8")
    class_config.write_text(json.dumps({str(d): f"digit {d}" for d in range(10)}), encoding="utf-8")
    seconds = dspl("train", "-d", str(audio), "-md", str(work_dir / "output"), "-hc", str(hp_config),
                   "-cc", str(class_config), "-l", str(label_file))
    print(f"trained {epochs} epochs in {seconds / 60:.1f} min")
    return next((work_dir / "output" / "models").rglob("model.h5")), audio, label_file


def speech_columns(path: Path, axes, sample_rate: int) -> np.ndarray:
    """Which plot columns lie on speech: the RMS of the frame around each column's time, within SPEECH_DB."""
    from dspl.data.audio import load_audio

    frame = round(axes.frame_length_s * sample_rate)
    centres = axes.seconds(np.arange(axes.width) + 0.5) * sample_rate
    audio = load_audio(path, sample_rate).numpy()
    audio = np.pad(audio, (0, max(0, int(centres.max()) + frame - len(audio))))  # the chunk's zero padding
    rms = np.array([np.sqrt(np.mean(audio[max(0, int(c) - frame // 2):int(c) + frame // 2] ** 2) + 1e-12)
                    for c in centres])
    level = 20 * np.log10(rms)
    return level >= level.max() - SPEECH_DB


def check_explain(out_dir: Path, inputs: list[Path], spec) -> dict[str, float]:
    """Assert every output explain promises exists; return the speech-frame figures of its maps (``spec``: the
    model's PreprocessingSpec)."""
    from dspl.explain import plot_axes

    rows = list(csv.DictReader((out_dir / "regions.csv").open(encoding="utf-8")))
    chunks = sorted({(row["filename"], int(row["chunk"])) for row in rows})
    by_name = {path.name: path for path in inputs}
    assert {name for name, _ in chunks} == set(by_name), "regions.csv misses files"
    assert all(count == 3 for count in Counter((r["filename"], r["chunk"]) for r in rows).values())
    for path in inputs:
        assert Image.open(out_dir / f"{path.stem}_summary.png").size[0] > 0
    on_speech, speech_area = [], []
    for name, index in chunks:
        path = by_name[name]
        Image.open(out_dir / f"{path.stem}_{index}.png").verify()
        attribution = np.load(out_dir / f"{path.stem}_{index}.npy")
        assert attribution.shape == (spec.image_height, spec.image_width)
        axes = plot_axes(spec, spec.chunk_samples, index * spec.hop_samples / spec.sample_rate)
        speech = speech_columns(path, axes, spec.sample_rate)
        on_speech.append(float(attribution[:, speech].sum() / max(attribution.sum(), 1e-12)))
        speech_area.append(float(speech.mean()))
    correct = {row["filename"] for row in rows if row["prediction"] == FILE_NAME.fullmatch(row["filename"]).group(1)}
    return {"chunks": len(chunks), "on_speech": float(np.mean(on_speech)), "speech_area": float(np.mean(speech_area)),
            "correct": len(correct)}


def check_report(report: Path) -> dict[str, int]:
    """Assert the report page exists and every image it shows is there and opens; return what it holds."""
    page = report.read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+)"', page)
    for source in images:
        Image.open(report.parent / source).verify()
    assert "<script" not in page.lower()
    return {"images": len(images), "sections": len(re.findall(r"<h2", page)), "bytes": len(page)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FSDD recordings directory")
    parser.add_argument("--work-dir", type=Path, default=None, help="where links, configs, models and maps go")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs when no --model is given")
    parser.add_argument("--model", type=Path, default=None,
                        help="a model trained by bench/fsdd.py (its --work-dir's output/models/.../model.h5)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    args = parser.parse_args()

    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="dspl_explain_fsdd_"))
    if args.model:
        audio, label_file, _ = write_split(args.data, work_dir, devel_from_take=40)
        model_file = args.model
    else:
        model_file, audio, label_file = train_model(args.data, work_dir, args.epochs)
    inputs_dir = work_dir / "explain_input"
    inputs_dir.mkdir(parents=True, exist_ok=True)
    inputs = []
    for digit in range(10):
        source = args.data / f"{digit}_{TEST_SPEAKER}_0.wav"
        assert FILE_NAME.fullmatch(source.name) and source.is_file(), source
        inputs.append(inputs_dir / source.name)
        shutil.copyfile(source, inputs[-1])

    from dspl import load_model

    spec = load_model(model_file).spec
    print(f"model {model_file}; {len(inputs)} recordings of {TEST_SPEAKER} (take 0 of each digit)")
    print(f"{'method':22} {'s/chunk':>8} {'chunks':>6} {'on speech':>10} {'speech area':>12} {'correct':>8}")
    for method in args.methods:
        out_dir = work_dir / "explained" / method
        seconds = dspl("explain", "-md", str(model_file), "-d", str(inputs_dir), "-o", str(out_dir),
                       "--method", method)
        figures = check_explain(out_dir, inputs, spec)
        print(f"{method:22} {seconds / figures['chunks']:8.2f} {figures['chunks']:6d} "
              f"{100 * figures['on_speech']:9.1f} % {100 * figures['speech_area']:10.1f} % "
              f"{figures['correct']:4d} of {len(inputs)}")
    seconds = dspl("report", "-md", str(model_file), "-d", str(audio), "-l", str(label_file))
    report = check_report(model_file.parent / "report" / "index.html")
    print(f"report {model_file.parent / 'report' / 'index.html'}: {report['images']} images (all load), "
          f"{report['sections']} sections, {report['bytes'] / 1024:.0f} KiB, {seconds:.1f} s")
    print(f"work dir {work_dir}")


if __name__ == "__main__":
    main()
