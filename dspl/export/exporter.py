"""The one place that knows every export format: ONNX, SavedModel, TFLite (fp32/fp16/dynamic/int8), end-to-end.

`Exporter(options).export(loaded, out_dir)`. Each step is verified against the previous one on real inputs
(plots made by PlotTransform from audio chunks) before the next runs: PyTorch -> ONNX Runtime -> SavedModel ->
TFLite float32 within 1e-4; quantised models by top-1 agreement with the float model; end-to-end models against
the image model on the TFLite preprocessor's plots and against the model's own scores on torch plots; quantised
ones take their plot normalised by the float preprocessor (dspl.export.input_normalisation). A model that is
TensorFlow already brings its own way to the SavedModel (dspl.models.SavedModelRoute) and skips ONNX.
Everything is built in a staging folder and moved into place as one unit. Nothing here touches the network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from dspl.errors import DsplError
from dspl.export import calibration, verify
from dspl.export.end_to_end import compose_fp32, splice
from dspl.export.input_normalisation import strip_input_normalisation
from dspl.export.inputs import ExportInputs, InputSources, gather_inputs
from dspl.export.metadata import ModelInfo, add_metadata
from dspl.export.onnx_export import export_onnx, onnx_predict
from dspl.export.preprocessor import create_preprocessor
from dspl.export.report import (
    FORMATS,
    ExportReport,
    StepCheck,
    framework_name,
    end_to_end_file,
    end_to_end_step,
    tflite_file,
    tflite_step,
)
from dspl.export.tf_convert import onnx_to_saved_model, saved_model_predict
from dspl.export.tflite_convert import (QUANTIZATIONS, convert_and_run, convert_saved_model, less_quantised,
                                        tflite_predict)
from dspl.files import clean_stale, commit, prepare_output_dir, remove, staging_dir, work_dir, write_atomically
from dspl.models import InputNormalisation, LoadedModel, SpectrumClassifier
from dspl.version import __version__

log = logging.getLogger(__name__)


def _unique(key: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` without repeats; a DsplError names the values not in ``allowed`` (or none given)."""
    values = tuple(dict.fromkeys(values))
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise DsplError(f"{key}: value {', '.join(unknown) or '(none)'}: expected one or more of {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how: ``formats`` (onnx, saved_model, tflite); ``quantize`` (TFLite and end-to-end models:
    fp32, fp16, dynamic, int8); ``end_to_end``: also raw-chunk -> scores models with TFLite metadata; ``int8_io``:
    full-int8 image models take and return int8 tensors; ``inputs``: calibration and verification audio (int8 needs
    some); ``min_agreement``: the top-1 agreement quantised models need (benchmarks of untrained models pass 0)."""

    formats: tuple[str, ...] = ("tflite",)
    quantize: tuple[str, ...] = ("fp32",)
    end_to_end: bool = False
    int8_io: bool = False
    inputs: InputSources = InputSources()
    min_agreement: float = verify.MIN_AGREEMENT

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", _unique("format", tuple(self.formats), FORMATS))
        object.__setattr__(self, "quantize", _unique("quantize", tuple(self.quantize), QUANTIZATIONS))
        if "int8" in self.quantize and not self.inputs.real_audio:
            raise DsplError("quantize: value 'int8': full-integer quantisation needs calibration audio: "
                            "pass --calibration-data DIR, or -d DATA_DIR with -l LABEL_FILE")


@dataclass
class ExportResult:
    """What an export wrote ({name: path}: onnx, saved_model, tflite_<q>, end_to_end_<q>, report) and its report."""

    files: dict[str, Path]
    report: ExportReport


@dataclass
class _Run:
    """State of one export: the model, the inputs, where things go, the outputs so far and the report."""

    loaded: LoadedModel
    options: ExportOptions
    inputs: ExportInputs
    out_dir: Path
    work: Path
    report: ExportReport
    results: dict[str, Path] = field(default_factory=dict)

    def path(self, fmt: str, name: str) -> Path:
        """Where a step writes ``name``: the output directory if ``fmt`` is asked for, else the work directory."""
        return (self.out_dir if fmt in self.options.formats else self.work) / name

    def record(self, step: str, check: float, **extra: float) -> None:
        self.report.steps[step] = StepCheck(check, **extra)

    def verified(self, step: str, check: str, previous: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Check a conversion step's ``scores`` against the ``previous`` step's, record the figure under ``step``
        and pass the scores on as the next step's reference."""
        self.record(step, verify.check_close(check, previous, scores))
        return scores

    def own_scores(self) -> np.ndarray:
        """The model's own scores of the verification plots."""
        with torch.no_grad():
            return self.loaded.model(torch.from_numpy(self.inputs.verify_plots)).numpy()

    @property
    def regression(self) -> bool:
        return not self.loaded.categorical


class Exporter:
    """Exports loaded models with one set of options (see ExportOptions and the module docstring); ``on_step`` is
    told each step as it starts (a status line: an export takes a minute), besides the INFO log."""

    def __init__(self, options: ExportOptions = ExportOptions(),
                 on_step: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.on_step = on_step

    def _step(self, text: str, *args: object) -> None:
        log.info(text, *args)
        if self.on_step is not None:
            self.on_step(text % args)

    def export(self, loaded: LoadedModel, out_dir: str | Path) -> ExportResult:
        """Export ``loaded`` into ``out_dir``: model.onnx, saved_model/, model_<q>.tflite, model_end_to_end_<q>.tflite
        and export_report.json, verified, then moved into place together (saying what they replace)."""
        options = self.options
        route = loaded.saved_model_route
        if route is not None and "onnx" in options.formats:
            raise DsplError(f"format: value 'onnx': {route.no_onnx}")
        out_dir = prepare_output_dir(out_dir, "export folder")
        clean_stale(out_dir)
        self._step("preparing the inputs to verify (and calibrate) with")
        inputs = gather_inputs(loaded.config, loaded.classes, options.inputs)
        stage = staging_dir(out_dir)
        try:
            with work_dir("export") as work:
                report = ExportReport(loaded.source or loaded.config.model.basemodel_name,
                                      loaded.config.model.basemodel_name, inputs.source, int(len(inputs.verify_plots)),
                                      loaded.reference)
                run = _Run(loaded, options, inputs, stage, work, report)
                self._export_all(run)
                run.results["report"] = report.write(stage)
            return ExportResult(_move_into_place(run.results, stage, out_dir), report)
        finally:
            remove(stage)

    def convert(self, loaded: LoadedModel, destination: str | Path) -> Path:
        """DeepSpectrumLite's `convert`: one verified image-model .tflite (plot [1, H, W, 3] -> scores) at
        destination, the first of the options' quantisations."""
        destination = Path(destination)
        if destination.is_dir():
            raise DsplError(f"{destination}: is a directory, expected the path of the .tflite file to write")
        prepare_output_dir(destination.parent, "destination folder")
        quantize = self.options.quantize[0]
        with work_dir("convert") as tmp:
            options = ExportOptions(formats=("tflite",), quantize=(quantize,), inputs=self.options.inputs,
                                    min_agreement=self.options.min_agreement)
            written = Exporter(options, self.on_step).export(loaded, tmp).files
            write_atomically(destination, written[tflite_step(quantize)].read_bytes())
        log.info("wrote %s", destination)
        return destination

    def _export_all(self, run: _Run) -> None:
        route = run.loaded.saved_model_route
        plots = run.inputs.verify_plots
        nhwc = calibration.to_nhwc(plots)
        reference = run.own_scores()
        saved_model = run.path("saved_model", "saved_model")
        if route is not None:
            self._step("step 1: %s -> TensorFlow SavedModel", framework_name(route.reference))
            route.write(nhwc.shape[1:], saved_model)
            float_scores = run.verified("saved_model", f"SavedModel vs {framework_name(route.reference)}", reference,
                                        saved_model_predict(saved_model, nhwc))
        else:
            onnx_path = run.path("onnx", "model.onnx")
            self._step("step 1: PyTorch -> ONNX")
            export_onnx(run.loaded.model, plots.shape[1:], onnx_path)
            onnx_scores = run.verified("onnx", "ONNX vs PyTorch", reference, onnx_predict(onnx_path, plots))
            if "onnx" in run.options.formats:
                run.results["onnx"] = onnx_path
            if run.options.formats == ("onnx",) and not run.options.end_to_end:
                return
            self._step("step 2: ONNX -> TensorFlow SavedModel (onnx2tf)")
            calibration_plots = run.inputs.calibration_plots
            sample = nhwc if calibration_plots is None else calibration.to_nhwc(calibration_plots)
            onnx_to_saved_model(onnx_path, saved_model, sample)
            float_scores = run.verified("saved_model", "SavedModel vs ONNX", onnx_scores,
                                        saved_model_predict(saved_model, nhwc))
        if "saved_model" in run.options.formats:
            run.results["saved_model"] = saved_model
        if "tflite" in run.options.formats or run.options.end_to_end:
            self._export_tflite(run, saved_model, float_scores)

    def _export_tflite(self, run: _Run, saved_model: Path, float_scores: np.ndarray) -> None:
        options = run.options
        nhwc = calibration.to_nhwc(run.inputs.verify_plots)
        calib = None if run.inputs.calibration_plots is None else calibration.to_nhwc(run.inputs.calibration_plots)
        image_models: dict[str, bytes] = {}
        for q in options.quantize:
            self._step("step 3: SavedModel -> TFLite %s", q)
            integer_io = options.int8_io and q == "int8"
            model, scores = convert_and_run(saved_model, q, calib, integer_io, nhwc)
            if q == "fp32":
                figure = verify.check_close("TFLite fp32 vs SavedModel", float_scores, scores)
            else:
                figure = verify.check_agreement(f"TFLite {q} vs float", float_scores, scores, options.min_agreement,
                                                regression=run.regression, advice=_unfaithful_advice(q))
            run.record(tflite_step(q), figure, max_abs_diff=verify.max_difference(float_scores, scores))
            if options.end_to_end:  # splicing needs the image model's float input
                image_models[q] = convert_saved_model(saved_model, q, calib) if integer_io else model
            if "tflite" in options.formats:
                path = run.out_dir / tflite_file(q)
                write_atomically(path, _with_metadata(run, model, end_to_end=False))
                run.results[tflite_step(q)] = path
        if options.end_to_end:
            self._export_end_to_end(run, saved_model, image_models)

    def _export_end_to_end(self, run: _Run, saved_model: Path, image_models: dict[str, bytes]) -> None:
        self._step("step 4: end-to-end models (raw chunk -> scores)")
        spec, samples = run.loaded.config.spec, run.inputs.num_samples
        preprocessor = create_preprocessor(spec, run.work / "preprocessor.tflite", samples).read_bytes()
        chunks = [chunk.numpy() for chunk in run.inputs.verify_chunks]
        tflite_plots = tflite_predict(preprocessor, chunks)
        own_scores = run.own_scores()
        normalising = _normalising_preprocessor(run, tflite_plots, chunks)
        for q in run.options.quantize:
            same_chain = tflite_predict(image_models[q], tflite_plots)
            step = f"end-to-end {q} vs TFLite preprocessor + image model {q}"
            if q == "fp32":
                model = _with_metadata(run, compose_fp32(spec, saved_model, samples), end_to_end=True)
                scores = tflite_predict(model, chunks)
                figure, difference = verify.check_close(step, same_chain, scores), None
            else:  # quantised: the preprocessor normalises in float where the image model's chain can be cut
                stripped = strip_input_normalisation(image_models[q], normalising[0]) if normalising else None
                model = splice(normalising[1], stripped) if stripped else splice(preprocessor, image_models[q])
                model = _with_metadata(run, model, end_to_end=True)
                scores = tflite_predict(model, chunks)
                figure = verify.check_agreement(step, same_chain, scores, run.options.min_agreement,
                                                regression=run.regression)
                difference = verify.max_difference(same_chain, scores)
            agreement = verify.check_agreement(f"end-to-end {q} vs {framework_name(run.loaded.reference)}",
                                               own_scores, scores, run.options.min_agreement,
                                               regression=run.regression)
            run.record(end_to_end_step(q), figure, max_abs_diff=difference, agreement=agreement,
                       max_abs_diff_own=verify.max_difference(own_scores, scores))
            path = run.out_dir / end_to_end_file(q)
            write_atomically(path, model)
            run.results[end_to_end_step(q)] = path


def _unfaithful_advice(quantize: str) -> str:
    """What to do when a model does not keep its decisions under ``quantize``."""
    calibration_advice = ", or calibrate on audio closer to the model's use (--calibration-data DIR)"
    return (f"the model does not survive {quantize} quantisation: export it with --quantize "
            f"{' or '.join(less_quantised(quantize))}{calibration_advice if quantize == 'int8' else ''}")


def _normalising_preprocessor(run: _Run, tflite_plots: np.ndarray,
                              chunks: list[np.ndarray]) -> tuple[InputNormalisation, bytes] | None:
    """The model's input normalisation and a preprocessor writing plots normalised by it, verified against the
    0..255 preprocessor's plots normalised here; None for models that normalise nothing or are not dspl's own."""
    model = run.loaded.model
    normalisation = model.input_normalisation if isinstance(model, SpectrumClassifier) else None
    if normalisation is None or run.loaded.saved_model_route is not None or run.options.quantize == ("fp32",):
        return None
    preprocessor = create_preprocessor(run.loaded.config.spec, run.work / "preprocessor_normalised.tflite",
                                       run.inputs.num_samples, normalisation).read_bytes()
    expected = tflite_plots * normalisation.scale + normalisation.shift
    verify.check_close("normalising preprocessor vs preprocessor + normalisation", expected,
                       tflite_predict(preprocessor, chunks))
    return normalisation, preprocessor


def _move_into_place(staged: dict[str, Path], stage: Path, out_dir: Path) -> dict[str, Path]:
    """Commit the verified artefacts from the staging folder into out_dir as one unit; say what they replace."""
    moves = {path: out_dir / path.relative_to(stage) for path in staged.values()}
    replaced = [f"{p.name}/" if p.is_dir() else p.name for p in moves.values() if p.exists()]
    if replaced:
        log.warning("%s: replacing %s of an earlier export", out_dir, ", ".join(sorted(replaced)))
    commit(moves)
    return {name: moves[path] for name, path in staged.items()}


def _with_metadata(run: _Run, model: bytes, end_to_end: bool) -> bytes:
    """Attach TFLite metadata: labels, audio properties (end-to-end) or image size, preprocessing JSON."""
    config, classes = run.loaded.config, run.loaded.classes
    backbone, kind_of = config.model.basemodel_name, config.prediction_type
    samples = run.inputs.num_samples
    kind = "raw audio chunk -> scores" if end_to_end else "spectrogram plot [1, H, W, C] on 0..255 -> scores"
    plot_shape = list(calibration.to_nhwc(run.inputs.verify_plots[:1]).shape)
    preprocessing = config.preprocessing.values()
    preprocessing.update(num_samples=samples, plot_shape=plot_shape, labels=list(classes.labels),
                         names=list(classes.names), prediction_type=kind_of, backbone=backbone,
                         dspl_version=__version__,
                         input=("raw chunk [1, num_samples] float32, before peak normalisation (num_samples 0: a whole "
                                "file of any length; resize the input tensor to it)") if end_to_end
                         else "plot [1, H, W, C] float32 on 0..255 (as `dspl plot --format npy` writes it)")
    info = ModelInfo(
        name=f"dspl {backbone} {kind_of}",
        description=f"dspl {kind}; {classes.num_classes} outputs ({', '.join(classes.labels)}); "
                    f"preprocessing {json.dumps(preprocessing, sort_keys=True)}",
        version=__version__, labels=list(classes.labels),
        input_name="audio" if end_to_end else "plot",
        input_description=(f"{samples or 'any number of'} samples at {config.spec.sample_rate} Hz, mono, float32"
                           if end_to_end else "plot image on 0..255"),
        output_description="scores after the output activation",
        sample_rate=config.spec.sample_rate if end_to_end else None, channels=1,
        image_size=(plot_shape[2], plot_shape[1]) if not end_to_end and plot_shape[-1] == 3 else None,
        preprocessing=preprocessing)
    return add_metadata(model, info)
