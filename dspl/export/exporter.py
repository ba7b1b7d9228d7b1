"""The one place that knows every export format: ONNX, SavedModel, TFLite (fp32/fp16/dynamic/int8), end-to-end.

Each step is verified against the previous one on real inputs (plots made by PlotTransform from audio
chunks) before the next runs: PyTorch -> ONNX Runtime -> SavedModel -> TFLite float32 within 1e-4;
quantised models by top-1 agreement with the float model; end-to-end models against the image model on
the TFLite preprocessor's plots and against PyTorch on torch plots. Nothing here touches the network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from dspl import __version__
from dspl.config import ClassConfig, HParams
from dspl.config.schema import PREPROCESSING_KEYS
from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.files import clean_stale, commit, prepare_output_dir, remove, staging_dir, work_dir, write_atomically
from dspl.spec import PreprocessingSpec
from dspl.export import calibration, verify
from dspl.export.tflite_convert import QUANTIZATIONS

log = logging.getLogger(__name__)

FORMATS = ("onnx", "saved_model", "tflite")
REPORT_FILE = "export_report.json"


@dataclass
class ExportInputs:
    """Raw chunks and model inputs (NCHW) for calibration and for verification.

    ``num_samples`` is the input length of the preprocessor and end-to-end models: the chunk length, a whole-file
    configuration's fixed length, or 0 (any length: the verification chunks then differ in length).
    """

    verify_chunks: list[torch.Tensor]
    verify_plots: np.ndarray
    num_samples: int
    calibration_plots: np.ndarray | None = None
    source: str = "synthetic tones"


@dataclass
class _Run:
    """State of one export: the model, its configs, the inputs, the outputs so far and the figures."""

    model: torch.nn.Module
    hp: HParams
    classes: ClassConfig
    inputs: ExportInputs
    out_dir: Path
    work: Path
    min_agreement: float
    results: dict[str, Path] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def regression(self) -> bool:
        return self.hp["prediction_type"] == "regression"


def export(model: str | Path | Any, out_dir: str | Path, formats: Sequence[str] = ("tflite",),
           quantize: Sequence[str] = ("fp32",), end_to_end: bool = False,
           calibration_data: str | Path | None = None, data_dir: str | Path | None = None,
           label_file: str | Path | None = None, int8_io: bool = False,
           max_chunks: int = calibration.MAX_CHUNKS, min_agreement: float = verify.MIN_AGREEMENT,
           hp_config: str | Path | None = None, class_config: str | Path | None = None,
           whole_file_seconds: float | None = None) -> dict[str, Path]:
    """Export a model file (or a LoadedModel) to out_dir; return {name: path} of everything written.

    formats: onnx, saved_model, tflite. quantize (TFLite and end-to-end models): fp32, fp16, dynamic, int8.
    end_to_end: also write raw-chunk -> scores models with TFLite metadata for each quantisation.
    Calibration/verification audio: calibration_data (a directory of audio files), or data_dir + label_file
    (the train partition calibrates, the devel partition verifies); without either, float exports are
    verified on synthetic tones and int8 is refused. Names: model.onnx, saved_model/, model_<q>.tflite,
    model_end_to_end_<q>.tflite, export_report.json (the verification figures).
    min_agreement: the top-1 agreement quantised models need (benchmarks of untrained models pass 0).
    whole_file_seconds: the input length of a whole-file model's preprocessor and end-to-end models; without it
    they take any length where TFLite has the resize as a built-in kernel, else the longest calibration file.
    hp_config, class_config: the configs of a DeepSpectrumLite Keras model file (dspl models hold their own).
    """
    formats, quantize = _check_choices("format", formats, FORMATS), _check_choices("quantize", quantize, QUANTIZATIONS)
    loaded = _load(model, hp_config, class_config)
    hp, classes = loaded.hp, loaded.classes
    if "int8" in quantize and calibration_data is None and label_file is None:
        raise DsplError("quantize: value 'int8': full-integer quantisation needs calibration audio: "
                        "pass --calibration-data DIR, or -d DATA_DIR with -l LABEL_FILE")
    out_dir = prepare_output_dir(out_dir, "export folder")
    clean_stale(out_dir)
    inputs = gather_inputs(hp, classes, calibration_data, data_dir, label_file, max_chunks, whole_file_seconds)
    stage = staging_dir(out_dir)
    try:
        with work_dir("export") as work:
            run = _Run(loaded.model.eval(), hp, classes, inputs, stage, work, min_agreement)
            run.report.update(model=str(model) if isinstance(model, (str, Path)) else loaded.hp["basemodel_name"],
                              backbone=hp["basemodel_name"], inputs=inputs.source,
                              verify_items=int(len(inputs.verify_plots)), steps={})
            _export_all(run, formats, quantize, end_to_end, int8_io)
            write_atomically(stage / REPORT_FILE, json.dumps(run.report, indent=2).encode())
            run.results["report"] = stage / REPORT_FILE
        return _move_into_place(run.results, stage, out_dir)
    finally:
        remove(stage)


def _move_into_place(staged: dict[str, Path], stage: Path, out_dir: Path) -> dict[str, Path]:
    """Commit the verified artefacts from the staging folder into out_dir as one unit; say what they replace."""
    moves = {path: out_dir / path.relative_to(stage) for path in staged.values()}
    replaced = [f"{p.name}/" if p.is_dir() else p.name for p in moves.values() if p.exists()]
    if replaced:
        log.warning("%s: replacing %s of an earlier export", out_dir, ", ".join(sorted(replaced)))
    commit(moves)
    return {name: moves[path] for name, path in staged.items()}


def gather_inputs(hp: HParams, classes: ClassConfig, calibration_data: str | Path | None,
                  data_dir: str | Path | None, label_file: str | Path | None,
                  max_chunks: int = calibration.MAX_CHUNKS, whole_file_seconds: float | None = None) -> ExportInputs:
    """Chunks and plots for calibration and verification from the sources the user named (see export)."""
    spec = PreprocessingSpec.from_hp(hp)
    if calibration_data is not None:
        files = find_audio_files(calibration_data)
        samples = _input_samples(spec, whole_file_seconds, hp, files)
        pool = calibration.sample_chunks(files, hp, 2 * max_chunks, num_samples=samples)
        calib, held_out, source = pool[0::2], pool[1::2], f"audio under {calibration_data}"
        if not len(held_out):
            held_out = calib
    elif data_dir is not None and label_file is None:
        raise DsplError(f"{data_dir}: calibration from a data directory also needs its label file (-l), "
                        "or pass the directory as --calibration-data")
    elif label_file is not None:
        if data_dir is None:
            raise DsplError(f"{label_file}: calibration from a label file also needs the data directory (-d)")
        train = calibration.partition_files(hp, classes, data_dir, label_file, "train")
        samples = _input_samples(spec, whole_file_seconds, hp, train)
        calib = calibration.sample_chunks(train, hp, max_chunks, num_samples=samples)
        devel = calibration.partition_files(hp, classes, data_dir, label_file, "devel")
        held_out = calibration.sample_chunks(devel, hp, max_chunks, seed=1, num_samples=samples) if devel else calib
        source = f"train/devel partitions of {label_file}"
    else:
        samples = _input_samples(spec, whole_file_seconds, hp, [])
        synthetic = calibration.synthetic_chunks(hp, num_samples=samples)
        return ExportInputs(synthetic, calibration.make_plots(hp, synthetic), samples)
    return ExportInputs(held_out, calibration.make_plots(hp, held_out), samples, calibration.make_plots(hp, calib),
                        source)


def _input_samples(spec: PreprocessingSpec, whole_file_seconds: float | None, hp: HParams,
                   files: Sequence[Path]) -> int:
    """The preprocessor's input length (see ExportInputs.num_samples); a fixed whole-file length defaults to the
    longest of ``files``."""
    if spec.whole_file and whole_file_seconds is None and not spec.dynamic_length_resize():
        if not files:
            raise DsplError(f"resize_method: value '{spec.resize_method}' (anti_alias "
                            f"{str(spec.anti_alias).lower()}): a whole-file model exports at a fixed input length: "
                            "pass --whole-file-seconds, or calibration audio to take its longest file")
        whole_file_seconds = calibration.longest_file_seconds(files, hp)
        log.info("whole-file exports take %.3f s of audio (the longest calibration file)", whole_file_seconds)
    return spec.input_samples(whole_file_seconds)


def _check_choices(key: str, values: Iterable[str], allowed: Sequence[str]) -> list[str]:
    values = list(dict.fromkeys(values))
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise DsplError(f"{key}: value {', '.join(unknown) or '(none)'}: expected one or more of {', '.join(allowed)}")
    return values


def _load(model: str | Path | Any, hp_config: str | Path | None = None, class_config: str | Path | None = None):
    from dspl.models.modelfile import load_model_file

    return load_model_file(model, hp_config, class_config) if isinstance(model, (str, Path)) else model


def _reference_scores(run: _Run, reference: str) -> np.ndarray:
    """The model's own scores of the verification plots, which step 1 is checked against; the report names
    the ``reference`` (pytorch or keras)."""
    run.report["reference"] = reference
    with torch.no_grad():
        return run.model(torch.from_numpy(run.inputs.verify_plots)).numpy()


def _step_path(run: _Run, formats: list[str], fmt: str, name: str) -> Path:
    """Where a step writes ``name``: the output directory if ``fmt`` is asked for, else the work directory."""
    return (run.out_dir if fmt in formats else run.work) / name


def _verified_step(run: _Run, key: str, check: str, previous: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Check a conversion step's ``scores`` against the ``previous`` step's, record the figure under ``key`` and
    pass the scores on as the next step's reference."""
    _record(run, key, verify.check_close(check, previous, scores))
    return scores


def _export_all(run: _Run, formats: list[str], quantize: list[str], end_to_end: bool, int8_io: bool) -> None:
    from dspl.export.onnx_export import export_onnx, onnx_predict
    from dspl.export.tf_convert import onnx_to_saved_model, saved_model_predict
    from dspl.legacy.keras_model import KerasScorer

    if isinstance(run.model, KerasScorer):
        _export_keras(run, formats, quantize, end_to_end, int8_io)
        return
    plots = run.inputs.verify_plots
    reference = _reference_scores(run, "pytorch")
    onnx_path = _step_path(run, formats, "onnx", "model.onnx")
    log.info("step 1: PyTorch -> ONNX")
    export_onnx(run.model, plots.shape[1:], onnx_path)
    onnx_scores = _verified_step(run, "onnx", "ONNX vs PyTorch", reference, onnx_predict(onnx_path, plots))
    if "onnx" in formats:
        run.results["onnx"] = onnx_path
    if formats == ["onnx"] and not end_to_end:
        return
    nhwc = calibration.to_nhwc(plots)
    saved_model = _step_path(run, formats, "saved_model", "saved_model")
    log.info("step 2: ONNX -> TensorFlow SavedModel (onnx2tf)")
    sample = calibration.to_nhwc(run.inputs.calibration_plots) if run.inputs.calibration_plots is not None else nhwc
    onnx_to_saved_model(onnx_path, saved_model, sample)
    tf_scores = _verified_step(run, "saved_model", "SavedModel vs ONNX", onnx_scores,
                               saved_model_predict(saved_model, nhwc))
    _export_from_saved_model(run, saved_model, tf_scores, formats, quantize, end_to_end, int8_io)


def _export_keras(run: _Run, formats: list[str], quantize: list[str], end_to_end: bool, int8_io: bool) -> None:
    """A DeepSpectrumLite Keras model: Keras -> SavedModel (no ONNX step), then as _export_all goes on."""
    from dspl.export.tf_convert import saved_model_predict
    from dspl.legacy.keras_export import keras_saved_model

    if "onnx" in formats:
        raise DsplError("format: value 'onnx': a DeepSpectrumLite Keras model goes to TensorFlow formats only; "
                        "for ONNX port it first with `dspl import-keras`")
    nhwc = calibration.to_nhwc(run.inputs.verify_plots)
    reference = _reference_scores(run, "keras")
    saved_model = _step_path(run, formats, "saved_model", "saved_model")
    log.info("step 1: Keras -> TensorFlow SavedModel")
    keras_saved_model(run.model, nhwc.shape[1:], saved_model)
    tf_scores = _verified_step(run, "saved_model", "SavedModel vs Keras", reference,
                               saved_model_predict(saved_model, nhwc))
    _export_from_saved_model(run, saved_model, tf_scores, formats, quantize, end_to_end, int8_io)


def _export_from_saved_model(run: _Run, saved_model: Path, float_scores: np.ndarray, formats: list[str],
                             quantize: list[str], end_to_end: bool, int8_io: bool) -> None:
    """Keep the verified SavedModel if asked for, then the TFLite models (and end-to-end ones) made from it."""
    if "saved_model" in formats:
        run.results["saved_model"] = saved_model
    if "tflite" in formats or end_to_end:
        _export_tflite(run, saved_model, float_scores, quantize, end_to_end, int8_io, write="tflite" in formats)


def _export_tflite(run: _Run, saved_model: Path, float_scores: np.ndarray, quantize: list[str],
                   end_to_end: bool, int8_io: bool, write: bool) -> None:
    from dspl.export.tflite_convert import convert_and_run, convert_saved_model

    nhwc = calibration.to_nhwc(run.inputs.verify_plots)
    calib = None if run.inputs.calibration_plots is None else calibration.to_nhwc(run.inputs.calibration_plots)

    image_models: dict[str, bytes] = {}
    for q in quantize:
        log.info("step 3: SavedModel -> TFLite %s", q)
        integer_io = int8_io and q == "int8"
        model, scores = convert_and_run(saved_model, q, calib, integer_io, nhwc)
        if q == "fp32":
            figure = verify.check_close("TFLite fp32 vs SavedModel", float_scores, scores)
        else:
            figure = verify.check_agreement(f"TFLite {q} vs float", float_scores, scores, run.min_agreement,
                                            regression=run.regression)
        _record(run, f"tflite_{q}", figure, max_abs_diff=verify.max_difference(float_scores, scores))
        if end_to_end:  # splicing needs the image model's float input
            image_models[q] = convert_saved_model(saved_model, q, calib) if integer_io else model
        if write:
            path = run.out_dir / f"model_{q}.tflite"
            write_atomically(path, _with_metadata(run, model, end_to_end=False))
            run.results[f"tflite_{q}"] = path
    if end_to_end:
        _export_end_to_end(run, saved_model, image_models, quantize)


def _export_end_to_end(run: _Run, saved_model: Path, image_models: dict[str, bytes], quantize: list[str]) -> None:
    from dspl.export.end_to_end import compose_fp32, splice
    from dspl.export.preprocessor import create_preprocessor
    from dspl.export.tflite_convert import tflite_predict

    log.info("step 4: end-to-end models (raw chunk -> scores)")
    preprocessor = create_preprocessor(run.hp, run.work / "preprocessor.tflite", run.inputs.num_samples).read_bytes()
    chunks = [chunk.numpy() for chunk in run.inputs.verify_chunks]
    tflite_plots = tflite_predict(preprocessor, chunks)
    with torch.no_grad():
        torch_scores = run.model(torch.from_numpy(run.inputs.verify_plots)).numpy()
    for q in quantize:
        model = (compose_fp32(run.hp, saved_model, run.inputs.num_samples) if q == "fp32"
                 else splice(preprocessor, image_models[q]))
        model = _with_metadata(run, model, end_to_end=True)
        scores = tflite_predict(model, chunks)
        same_chain = tflite_predict(image_models[q], tflite_plots)
        figure = verify.check_close(f"end-to-end {q} vs TFLite preprocessor + image model {q}", same_chain, scores)
        agreement = verify.check_agreement(f"end-to-end {q} vs PyTorch", torch_scores, scores,
                                           run.min_agreement, regression=run.regression)
        _record(run, f"end_to_end_{q}", figure, agreement_with_pytorch=agreement,
                max_abs_diff_pytorch=verify.max_difference(torch_scores, scores))
        path = run.out_dir / f"model_end_to_end_{q}.tflite"
        write_atomically(path, model)
        run.results[f"end_to_end_{q}"] = path


def _record(run: _Run, step: str, figure: float, **extra: float) -> None:
    run.report["steps"][step] = {"check": figure, **extra}


def _with_metadata(run: _Run, model: bytes, end_to_end: bool) -> bytes:
    """Attach TFLite metadata: labels, audio properties (end-to-end) or image size, preprocessing JSON."""
    from dspl.export.metadata import ModelInfo, add_metadata

    hp, classes = run.hp, run.classes
    samples = run.inputs.num_samples
    kind = "raw audio chunk -> scores" if end_to_end else "spectrogram plot [1, H, W, C] on 0..255 -> scores"
    plot_shape = list(calibration.to_nhwc(run.inputs.verify_plots[:1]).shape)
    preprocessing = {key: hp[key] for key in PREPROCESSING_KEYS}
    preprocessing.update(num_samples=samples, plot_shape=plot_shape, labels=list(classes.labels),
                         names=list(classes.names), prediction_type=hp["prediction_type"],
                         backbone=hp["basemodel_name"], dspl_version=__version__,
                         input=("raw chunk [1, num_samples] float32, before peak normalisation (num_samples 0: a whole "
                                "file of any length; resize the input tensor to it)") if end_to_end
                         else "plot [1, H, W, C] float32 on 0..255 (as `dspl plot --format npy` writes it)")
    info = ModelInfo(
        name=f"dspl {hp['basemodel_name']} {hp['prediction_type']}",
        description=f"dspl {kind}; {classes.num_classes} outputs ({', '.join(classes.labels)}); "
                    f"preprocessing {json.dumps(preprocessing, sort_keys=True)}",
        version=__version__, labels=list(classes.labels),
        input_name="audio" if end_to_end else "plot",
        input_description=(f"{samples or 'any number of'} samples at {hp['sample_rate']} Hz, mono, float32"
                           if end_to_end
                           else "plot image on 0..255"),
        output_description="scores after the output activation",
        sample_rate=hp["sample_rate"] if end_to_end else None, channels=1,
        image_size=(plot_shape[2], plot_shape[1]) if not end_to_end and plot_shape[-1] == 3 else None,
        preprocessing=preprocessing)
    return add_metadata(model, info)


def convert(model: str | Path | Any, destination: str | Path, quantize: str = "fp32",
            calibration_data: str | Path | None = None, data_dir: str | Path | None = None,
            label_file: str | Path | None = None, hp_config: str | Path | None = None,
            class_config: str | Path | None = None) -> Path:
    """DeepSpectrumLite's `convert`: one verified image-model .tflite (plot [1, H, W, 3] -> scores) at destination.

    hp_config, class_config: the configs of a DeepSpectrumLite Keras model file (dspl models hold their own).
    """
    destination = Path(destination)
    if destination.is_dir():
        raise DsplError(f"{destination}: is a directory, expected the path of the .tflite file to write")
    prepare_output_dir(destination.parent, "destination folder")
    with work_dir("convert") as tmp:
        written = export(model, tmp, formats=("tflite",), quantize=(quantize,), calibration_data=calibration_data,
                         data_dir=data_dir, label_file=label_file, hp_config=hp_config, class_config=class_config)
        write_atomically(destination, written[f"tflite_{quantize}"].read_bytes())
    log.info("wrote %s", destination)
    return destination
