"""`dspl export` and `dspl convert` (dspl.workflows.export): one-line errors, ONNX only, `--calibration-data DIR`,
and float32 preprocessing inside quantised end-to-end models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import tiny_config

from dspl.cli.main import cli


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "-s", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "not found" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["convert", "-s", str(tmp_path / "missing.h5"), "-d", str(tmp_path / "m.tflite")])
    assert result.exit_code == 1 and "not found" in result.output


def test_cli_export_onnx_only(tiny_loaded, tmp_path: Path) -> None:
    """`dspl export --format onnx` stops after the verified ONNX step (no TensorFlow conversion)."""
    from dspl.models.modelfile import save_model_file

    model_file = save_model_file(tmp_path / "model.h5", tiny_loaded.model, tiny_loaded.config, tiny_loaded.classes)
    result = CliRunner().invoke(cli, ["export", "-s", str(model_file), "-o", str(tmp_path / "out"), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert "onnx:" in result.output and not (tmp_path / "out" / "saved_model").exists()
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert report["steps"]["onnx"]["check"] <= 1e-4 and report["inputs"] == "synthetic tones"


@pytest.fixture(scope="module")
def calibrated_export(spread_model, tmp_path_factory):
    """`dspl export --quantize int8 --end-to-end --calibration-data DIR` on an untrained model (its int8
    agreement is not the point here: the export is run with min_agreement 0), recording the calibration files."""
    import soundfile as sf

    from dspl.export import calibration
    from dspl.workflows import export as export_workflow

    work = tmp_path_factory.mktemp("calibration")
    calib_dir = work / "calib"
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    for i, (sub, frequency) in enumerate([("", 440), ("x", 1000), ("x/y", 2500), ("z", 6000)]):
        (calib_dir / sub).mkdir(parents=True, exist_ok=True)
        sf.write(calib_dir / sub / f"tone_{i}.wav", (0.4 * np.sin(2 * np.pi * frequency * t)).astype(np.float32), rate)
    seen: list[list[Path]] = []
    real_sample_chunks, real_exporter = calibration.sample_chunks, export_workflow.Exporter

    def recording_sample_chunks(files, *args, **kwargs):
        seen.append([Path(f) for f in files])
        return real_sample_chunks(files, *args, **kwargs)

    def lenient_exporter(options, on_step=None):
        return real_exporter(dataclasses.replace(options, min_agreement=0.0), on_step)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibration, "sample_chunks", recording_sample_chunks)
        mp.setattr(export_workflow, "Exporter", lenient_exporter)
        result = CliRunner().invoke(cli, ["export", "-s", str(spread_model), "-o", str(work / "out"),
                                          "--quantize", "int8", "--end-to-end", "--calibration-data", str(calib_dir)])
    assert result.exit_code == 0, result.output
    return {"out": work / "out", "calib_dir": calib_dir, "seen": seen}


@pytest.mark.slow
def test_calibration_data_dir_is_the_calibration_source(calibrated_export):
    calib_dir, seen = calibrated_export["calib_dir"], calibrated_export["seen"]
    assert len(seen) == 1  # calibration and verification chunks come from this one sample
    assert sorted(p.relative_to(calib_dir).as_posix() for p in seen[0]) == [
        "tone_0.wav", "x/tone_1.wav", "x/y/tone_2.wav", "z/tone_3.wav"]
    report = json.loads((calibrated_export["out"] / "export_report.json").read_text())
    assert str(calib_dir) in report["inputs"]
    assert {"tflite_int8", "end_to_end_int8"} <= set(report["steps"])
    assert (calibrated_export["out"] / "model_int8.tflite").is_file()


@pytest.mark.slow
def test_quantised_end_to_end_model_keeps_its_preprocessing_in_float32(calibrated_export):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    path = calibrated_export["out"] / "model_end_to_end_int8.tflite"
    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    hp = tiny_config()
    assert source["dtype"] == np.float32 and list(source["shape"]) == [1, 16000]
    assert target["dtype"] == np.float32
    ops = interpreter._get_ops_details()  # graph order; the public API has no op listing
    quantize = [i for i, op in enumerate(ops) if op["op_name"] == "QUANTIZE"]
    assert len(quantize) == 1  # exactly one step into integers ...
    plot = tensors[ops[quantize[0]]["inputs"][0]]
    # ... and it takes the float32 plot [1, H, W, 3]: the whole preprocessing ran before it, in float32
    assert plot["dtype"] == np.float32 and list(plot["shape"]) == [1, hp.spec.image_height, hp.spec.image_width, 3]
    preprocessing = ops[:quantize[0]]
    assert len(preprocessing) >= 10
    for op in preprocessing:
        dtypes = {tensors[i]["dtype"] for i in [*op["inputs"], *op["outputs"]] if i >= 0}
        assert dtypes <= {np.float32, np.complex64, np.int32, np.int64, np.bool_}, (op["op_name"], dtypes)
    image_model = ops[quantize[0] + 1:]
    assert any(op["op_name"] == "CONV_2D" and tensors[op["inputs"][1]]["dtype"] == np.int8 for op in image_model)


@pytest.mark.slow
def test_quantised_end_to_end_model_gets_its_plot_normalised_in_float32(calibrated_export):
    """The image model's per-channel input normalisation, slow as int8 operators, is cut out of the end-to-end
    model: its float32 preprocessor writes the normalised plot, which the QUANTIZE takes into the first layer."""
    from dspl.export.tflite_file import tflite_operators

    out = calibrated_export["out"]
    image, end_to_end = (tflite_operators(out / name) for name in ("model_int8.tflite", "model_end_to_end_int8.tflite"))
    assert image[:4] == ["QUANTIZE", "MUL", "SUB", "MUL"]
    assert end_to_end[end_to_end.index("QUANTIZE"):] == ["QUANTIZE", *image[4:]]
    step = json.loads((out / "export_report.json").read_text())["steps"]["end_to_end_int8"]
    assert 0.0 <= step["check"] <= 1.0 and step["max_abs_diff"] >= 0.0  # agreement with the chained models
