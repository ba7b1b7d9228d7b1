"""`benchmark`: every exported TFLite variant of one model side by side: size, latency, accuracy on labelled data.

What a user asks before choosing fp32, fp16 or int8, plots-in or end-to-end: the variants are the ``*.tflite``
files `dspl export` wrote into one directory. Latency is measured interleaved, invoke by invoke (dspl.latency);
with a label file each variant scores the chunks of one partition (plots-in variants get the model's own plots,
end-to-end ones the raw chunks) and its accuracy (categorical) or mean absolute error (regression) is given
beside the model's own (PyTorch's, or Keras's for a DeepSpectrumLite model) and its top-1 agreement with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dspl.config import GivenConfigs
from dspl.data.audio import load_audio
from dspl.data.chunking import split_into_chunks
from dspl.data.parsers import PARTITIONS, check_files_exist, encode_targets, parse_label_file
from dspl.errors import DsplError
from dspl.export.calibration import to_nhwc
from dspl.export.report import agreement_key, framework_name
from dspl.export.tflite_convert import make_interpreter, tflite_predict
from dspl.export.tflite_stats import measure_latencies
from dspl.export.verify import top1_agreement
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models import LoadedModel
from dspl.models.metrics import in_percent


def labelled_chunks(loaded: LoadedModel, data_dir: str | Path, label_file: str | Path,
                    partition: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Every chunk of a partition's files (raw, float32) and its file's target, as training splits them."""
    entries = parse_label_file(label_file, loaded.config.label_parser)[PARTITIONS.index(partition)]
    if not entries:
        raise DsplError(f"{label_file}: no {partition} files to measure accuracy on")
    check_files_exist(entries, Path(data_dir), Path(label_file))
    targets = encode_targets(entries, loaded.classes, loaded.categorical, label_file)
    chunks, chunk_targets = [], []
    for entry, target in zip(entries, targets):
        path = Path(data_dir) / entry.path
        spec = loaded.config.spec
        pieces = split_into_chunks(load_audio(path, spec.sample_rate), spec, str(path))
        chunks.extend(piece.numpy().astype(np.float32) for piece in pieces)
        chunk_targets.extend([target] * len(pieces))
    return chunks, np.asarray(chunk_targets)


def _quality(scores: np.ndarray, targets: np.ndarray, categorical: bool) -> float:
    """Accuracy (categorical) or mean absolute error (regression) of scores [N, K] against targets [N]."""
    if categorical:
        return float(np.mean(scores.argmax(axis=1) == targets))
    return float(np.mean(np.abs(scores[:, 0] - targets)))


def benchmark(model_file: str | Path, export_dir: str | Path, data_dir: str | Path | None = None,
              label_file: str | Path | None = None, partition: str = "test", runs: int = 50,
              threads: int | None = None, given: GivenConfigs = NO_CONFIGS) -> dict[str, Any]:
    """Size, latency and (with data and a label file) accuracy of every .tflite variant in ``export_dir``
    (``given``: the configs of a DeepSpectrumLite Keras model). With data, ``result[reference]`` is the model's
    own accuracy (reference: "pytorch" or "keras") and each variant's agreement with it is under
    ``agreement_with_<reference>``."""
    variants = {path.stem.removeprefix("model_"): path for path in sorted(Path(export_dir).glob("*.tflite"))}
    if not variants:
        raise DsplError(f"{export_dir}: no .tflite files (run `dspl export -s MODEL -o {export_dir}` first)")
    loaded = load_model_file(model_file, given)
    categorical = loaded.categorical
    rows = {name: {"file": str(path), "size_bytes": path.stat().st_size} for name, path in variants.items()}
    for name, latency in measure_latencies(variants, runs, threads).items():
        rows[name]["latency"] = latency
    result: dict[str, Any] = {"model": str(model_file), "metric": "accuracy" if categorical else "mae",
                              "reference": loaded.reference, "variants": rows}
    if data_dir is None or label_file is None:
        return result
    chunks, targets = labelled_chunks(loaded, data_dir, label_file, partition)
    features = loaded.features.eval()
    with torch.inference_mode():
        plots = [features(torch.from_numpy(chunk)[None])[0] for chunk in chunks]
        reference = torch.cat([loaded.model.eval()(plot[None]) for plot in plots]).float().numpy()
    nhwc = [image for image in to_nhwc(torch.stack(plots).numpy())]
    result.update({"partition": partition, "chunks": len(chunks),
                   loaded.reference: _quality(reference, targets, categorical)})
    for name, path in variants.items():
        raw_input = len(make_interpreter(path).get_input_details()[0]["shape"]) == 2
        scores = tflite_predict(path, chunks if raw_input else nhwc, threads)
        rows[name].update({"quality": _quality(scores, targets, categorical),
                           agreement_key(loaded.reference): top1_agreement(reference, scores) if categorical
                           else None})
    return result


def print_benchmark(result: dict[str, Any]) -> None:
    """The variants side by side as a table."""
    from rich.table import Table

    from dspl.workflows.console import make_console

    metric, reference = result["metric"], result["reference"]
    percent = in_percent(metric, metric == "accuracy")

    def shown(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}" if percent else f"{value:.4f}"

    table = Table("variant", "size (MB)", "median ms", "p90 ms", f"{metric} (%)" if percent else metric,
                  f"top-1 agreement with {framework_name(reference)} (%)",
                  title=f"{result['model']}: exported variants")
    for name, row in result["variants"].items():
        latency = row["latency"]
        agreement = row.get(agreement_key(reference))
        table.add_row(name, f"{row['size_bytes'] / 1e6:.2f}", f"{latency['median_ms']:.2f}", f"{latency['p90_ms']:.2f}",
                      shown(row.get("quality")), "-" if agreement is None else f"{100 * agreement:.1f}")
    console = make_console()
    console.print(table)
    latency = next(iter(result["variants"].values()))["latency"]
    console.print(f"latency: {latency['runs']} invokes of each variant after {latency['warmup']} warm-up invokes, "
                  f"interleaved, on {latency['threads']} thread(s)")
    if reference in result:
        unit = " %" if percent else ""
        console.print(f"{framework_name(reference)} model: {metric} {shown(result[reference])}{unit} on "
                      f"{result['chunks']} chunks of the {result['partition']} partition")
