"""Export every backbone the registry maps (timm/torchvision, random weights) to TFLite fp32 and int8.

Prints one row per backbone: success (or the error), file sizes, fp32 parity with PyTorch (max |Δ score|),
int8 top-1 agreement with the float model, and median latency. Untrained models give near-uniform scores,
so the int8 agreement here is informative only (the test suite checks it on a trained model).

    python bench/export_matrix.py [--backbones densenet121 ...] [--image-size 224] [--threads 2] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dspl.quiet import set_verbosity

if TYPE_CHECKING:
    from dspl.config import RunConfig

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hp_config.json"


def registry_backbones() -> list[str]:
    """DeepSpectrumLite names with a PyTorch equivalent, then the torchvision-only backbones."""
    from dspl.models.backbones import DSL_BACKBONES, TORCHVISION_BACKBONES

    names = [name for name, target in DSL_BACKBONES.items() if target is not None]
    covered = {DSL_BACKBONES[name] for name in names}
    return names + [name for name in TORCHVISION_BACKBONES if name not in covered]


def export_one(backbone: str, config: "RunConfig", out: Path, calibration_dir: Path, runs: int,
               threads: int) -> dict:
    """Export one backbone; the row of the table (an 'error' entry when any step fails)."""
    from dspl.config import ClassConfig
    from dspl.errors import DsplError
    from dspl.export.exporter import Exporter, ExportOptions
    from dspl.export.inputs import InputSources
    from dspl.export.tflite_stats import measure_latency
    from dspl.features import PlotTransform
    from dspl.models import LoadedModel, create_model

    classes = ClassConfig.from_dict({"a": "A", "b": "B", "c": "C"})
    options = ExportOptions(formats=("tflite",), quantize=("fp32", "int8"),
                            inputs=InputSources(calibration_data=calibration_dir, max_chunks=8), min_agreement=0.0)
    start = time.perf_counter()
    try:
        config = config.replace(basemodel_name=backbone, weights="")
        model = create_model(config.model, classes.num_classes, in_chans=config.spec.input_channels,
                             pretrained=False).eval()
        loaded = LoadedModel(model, PlotTransform(config.spec).eval(), config, classes)
        result = Exporter(options).export(loaded, out)
    except (DsplError, RuntimeError, ValueError, TypeError) as exc:
        return {"backbone": backbone, "ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}",
                "seconds": time.perf_counter() - start}
    written, steps = result.files, result.report.steps
    return {"backbone": backbone, "ok": True, "seconds": time.perf_counter() - start,
            "fp32_mb": written["tflite_fp32"].stat().st_size / 1e6,
            "int8_mb": written["tflite_int8"].stat().st_size / 1e6,
            "fp32_parity": steps["tflite_fp32"].check, "int8_agreement": steps["tflite_int8"].check,
            "fp32_ms": measure_latency(written["tflite_fp32"], runs, threads)["median_ms"],
            "int8_ms": measure_latency(written["tflite_int8"], runs, threads)["median_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=None, help="default: every registry backbone")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    set_verbosity(1)  # as a command with -v: dspl's progress lines, no native TensorFlow chatter

    from dspl.config import load_config
    from dspl.data.example import write_example_data

    config = load_config(args.config, 0).replace(image_height=args.image_size, image_width=args.image_size)
    rows = []
    with tempfile.TemporaryDirectory(prefix="dspl-matrix-") as tmp:
        audio = write_example_data(Path(tmp) / "example", files_per_class=2) / "audio"
        for backbone in args.backbones or registry_backbones():
            rows.append(export_one(backbone, config, Path(tmp) / backbone, audio, args.runs, args.threads))
            logging.info("%s", rows[-1])
    print(f"\nTFLite export matrix: {args.image_size}x{args.image_size} plots, {args.threads} threads, "
          f"median of {args.runs} runs")
    print(f"{'backbone':<22}{'ok':<4}{'fp32 MB':>9}{'int8 MB':>9}{'fp32 max|Δ|':>13}{'int8 top-1':>12}"
          f"{'fp32 ms':>9}{'int8 ms':>9}{'export s':>10}")
    for row in rows:
        if row["ok"]:
            print(f"{row['backbone']:<22}{'yes':<4}{row['fp32_mb']:>9.2f}{row['int8_mb']:>9.2f}"
                  f"{row['fp32_parity']:>13.2e}{row['int8_agreement']:>12.2f}{row['fp32_ms']:>9.2f}"
                  f"{row['int8_ms']:>9.2f}{row['seconds']:>10.0f}")
        else:
            print(f"{row['backbone']:<22}{'no':<4}  {row['error']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
