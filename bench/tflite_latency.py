"""Per-chunk latency of dspl's end-to-end TFLite models (fp32, int8) vs DeepSpectrumLite's converted models.

For each backbone (random weights, nothing is downloaded): dspl exports raw chunk -> scores models with
built-in operators only, in float32 and full int8 (calibrated on example audio).

With --dsl-python (a Python 3.8 venv with deepspectrumlite==1.0.2, see bench/dsl_side.py) the baseline is
DeepSpectrumLite's own output, made in its process: the .tflite its `create-preprocessor` writes (1 s at 16 kHz
-> scaled plot) and its Keras model converted as its `convert` does (TFLiteConverter.from_keras_model,
SELECT_TF_OPS). Its `convert` fails on from-scratch models, so its model is built with random weights in
inference mode (bench/dsl_side.py says how); per chunk it costs preprocessor + model. The configuration is
configs/hp_config.json with 1 s chunks, the input its preprocessor is fixed to. Without the flag a stand-in
made here serves: a Keras application (tf_keras, weights=None) with the same head and the tf.signal reference
preprocessing in one graph, converted with SELECT_TF_OPS.

All models are timed with one interpreter each, interleaved invoke by invoke (LiteRT with XNNPACK;
tf.lite.Interpreter when a baseline needs Flex ops), at the same thread count. Prints a table and the ratios.
Target: dspl's end-to-end per-chunk latency at least 2x lower than DeepSpectrumLite's converted Keras model with
its preprocessor. --busy times the models beside a process spinning on CPU 0 (bench/busy.py).

    python bench/tflite_latency.py [--dsl-python PATH] [--backbones mobilenet_v2 densenet121] [--threads 2]
                                   [--runs 30] [--work DIR [--reuse]] [--busy]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from busy import busy_if  # bench/: the spinning process

from dspl.quiet import set_verbosity

if TYPE_CHECKING:
    from dsl_side import DslProcess

    from dspl.config import RunConfig

KERAS_APPS = {"mobilenet_v2": "MobileNetV2", "densenet121": "DenseNet121"}
DSL_APPS = {"mobilenet_v2": "mobilenet_v2.MobileNetV2", "densenet121": "densenet.DenseNet121"}  # tf.keras.applications
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "hp_config.json"


def keras_end_to_end(config: "RunConfig", backbone: str, num_classes: int, path: Path) -> Path:
    """DeepSpectrumLite-style model: tf.signal plots -> Keras application -> Dense head; SELECT_TF_OPS allowed."""
    import tensorflow as tf
    import tf_keras

    from dspl.export.tf_reference import TFPlotPipeline

    pipeline = TFPlotPipeline(config.spec)  # the tf.signal / tf.image reference preprocessing
    size = (config.spec.image_height, config.spec.image_width, 3)
    application = getattr(tf_keras.applications, KERAS_APPS[backbone])(
        weights=None, include_top=False, pooling="avg", input_shape=size)
    inputs = tf_keras.Input(size)
    x = tf_keras.applications.imagenet_utils.preprocess_input(
        inputs, mode="tf" if backbone == "mobilenet_v2" else "torch")
    x = application(x)
    x = tf_keras.layers.Dense(config.model.num_units, activation="relu")(x)
    x = tf_keras.layers.Dropout(config.model.dropout)(x)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(num_classes, activation="softmax")(x))
    length = pipeline.num_samples

    @tf.function(input_signature=[tf.TensorSpec([1, length], tf.float32)])
    def end_to_end(audio):
        return model(pipeline(audio), training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([end_to_end.get_concrete_function()], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    path.write_bytes(converter.convert())
    return path


def dspl_end_to_end(config: "RunConfig", backbone: str, num_classes: int, out: Path, calibration_dir: Path) -> None:
    """dspl's fp32 and int8 end-to-end models of a random-weight model (agreement is reported, not enforced)."""
    from dspl.config import ClassConfig
    from dspl.export.exporter import Exporter, ExportOptions
    from dspl.export.inputs import InputSources
    from dspl.features import PlotTransform
    from dspl.models import LoadedModel, create_model

    classes = ClassConfig.from_dict({f"c{i}": f"Class {i}" for i in range(num_classes)})
    model = create_model(config.model, num_classes, in_chans=config.spec.input_channels, pretrained=False).eval()
    loaded = LoadedModel(model, PlotTransform(config.spec).eval(), config, classes)
    options = ExportOptions(formats=("tflite",), quantize=("fp32", "int8"), end_to_end=True,
                            inputs=InputSources(calibration_data=calibration_dir, max_chunks=16), min_agreement=0.0)
    Exporter(options).export(loaded, out)


def dsl_converted(dsl: "DslProcess", config: "RunConfig", backbone: str, num_classes: int,
                  work: Path) -> dict[str, Path]:
    """DeepSpectrumLite's preprocessor and converted model for ``backbone``, made in its own process."""
    import json

    from dsl_side import dsl_hp

    class_config = dsl.work / "class_config.json"
    class_config.write_text(json.dumps({f"c{i}": f"Class {i}" for i in range(num_classes)}), encoding="utf-8")
    reply = dsl.request("convert", hp_config=dsl.write_hp(dsl_hp(config)), class_config=class_config,
                        keras_application=DSL_APPS[backbone], run_dir=dsl.work / "run",
                        model_out=work / f"dsl_{backbone}.tflite", preprocessor_out=work / f"dsl_{backbone}_pre.tflite")
    return {"DSL preprocessor": Path(reply["preprocessor"]), "DSL model (convert)": Path(reply["model"])}


def build(backbone: str, config: "RunConfig", work: Path, audio: Path, reuse: bool,
          dsl: "DslProcess | None") -> tuple[dict[str, Path], float]:
    """The models of one backbone (kept from an earlier run with --reuse) and dspl's int8 agreement."""
    from dspl.export.report import REPORT_FILE, ExportReport, end_to_end_step

    ours = work / f"dspl_{backbone}"
    if not (reuse and (ours / REPORT_FILE).is_file()):
        start = time.perf_counter()
        dspl_end_to_end(config, backbone, 3, ours, audio)
        logging.info("%s: dspl export took %.0f s", backbone, time.perf_counter() - start)
    models = {"dspl fp32": ours / "model_end_to_end_fp32.tflite", "dspl int8": ours / "model_end_to_end_int8.tflite"}
    if dsl:
        models.update(dsl_converted(dsl, config, backbone, 3, work))
    else:
        baseline = work / f"keras_{backbone}_select_tf_ops.tflite"
        if not (reuse and baseline.is_file()):
            keras_end_to_end(config, backbone, 3, baseline)
        models["keras SELECT_TF_OPS"] = baseline
    report = ExportReport.read(ours / REPORT_FILE)
    return models, report.steps[end_to_end_step("int8")].agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=list(KERAS_APPS), choices=list(KERAS_APPS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--config", type=Path, default=CONFIG, help="hp config (default: configs/hp_config.json)")
    parser.add_argument("--work", type=Path, default=None, help="keep the models here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="time the models an earlier run left in --work")
    parser.add_argument("--dsl-python", type=Path, default=None,
                        help="python of a DeepSpectrumLite 1.0.2 venv: its own converted models as the baseline")
    parser.add_argument("--busy", action="store_true",
                        help="time the models beside a process spinning on CPU 0 (bench/busy.py)")
    args = parser.parse_args()
    set_verbosity(1)  # as a command with -v: dspl's progress lines, no native TensorFlow chatter

    from dspl.config import load_config
    from dspl.data.example import write_example_data
    from dspl.export.tflite_file import custom_operators
    from dspl.export.tflite_stats import measure_latencies

    config = load_config(args.config, 0)
    dsl = None
    if args.dsl_python:
        from dsl_side import DslProcess

        dsl = DslProcess(args.dsl_python)
        config = config.replace(chunk_size=1.0, chunk_hop_size=0.5, sample_rate=16000)  # its preprocessor: [1, 16000]
    baseline = "DSL preprocessor + model" if dsl else "keras SELECT_TF_OPS"
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="dspl-bench-") as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            audio = write_example_data(work / "example", files_per_class=4) / "audio"
            for backbone in args.backbones:
                models, agreement = build(backbone, config.replace(basemodel_name=backbone, weights=""), work, audio,
                                          args.reuse, dsl)
                # One runtime for all: LiteRT unless a baseline really needs Flex ops.
                flex = any(custom_operators(path) for path in models.values())
                runtime = "tensorflow" if flex else "litert"
                with busy_if(args.busy):
                    timings = measure_latencies(models, args.runs, args.threads, runtime=runtime)
                for name, timing in timings.items():
                    rows.append((backbone, f"{name} ({runtime})", timing["median_ms"], timing["p90_ms"],
                                 models[name].stat().st_size / 1e6, ",".join(custom_operators(models[name])) or "-"))
                if dsl:
                    base = timings["DSL preprocessor"]["median_ms"] + timings["DSL model (convert)"]["median_ms"]
                    rows.append((backbone, f"{baseline} (sum of medians)", base, float("nan"), float("nan"), "-"))
                else:
                    base = timings[baseline]["median_ms"]
                rows.append((backbone, f"ratio vs {baseline}: int8 | fp32", base / timings["dspl int8"]["median_ms"],
                             base / timings["dspl fp32"]["median_ms"], float("nan"),
                             f"int8 top-1 agreement with PyTorch {agreement:.2f}"))
    finally:
        if dsl:
            dsl.close()
    samples = int(config.preprocessing.chunk_size * config.preprocessing.sample_rate)
    print(f"\nper-chunk latency, {args.threads} threads, {args.runs} interleaved runs after 5 warm-up runs; "
          + ("beside a process spinning on CPU 0; " if args.busy else "")
          + f"chunk {samples} samples, plots {config.spec.image_height}x{config.spec.image_width}"
          + ("; DSL's model: random weights, converted in inference mode (its `convert` fails from scratch)"
             if dsl else ""))
    print(f"{'backbone':<14}{'model':<44}{'median ms':>11}{'p90 ms':>10}{'MB':>8}  non-builtin ops / note")
    for backbone, name, median, p90, size, note in rows:
        if name.startswith("ratio"):
            print(f"{backbone:<14}{name:<44}{median:>10.2f}x{p90:>9.2f}x{'':>8}  {note}")
        else:
            print(f"{backbone:<14}{name:<44}{median:>11.2f}{p90:>10.2f}{size:>8.2f}  {note}")

if __name__ == "__main__":
    main()
