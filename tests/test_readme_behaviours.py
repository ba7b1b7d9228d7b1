"""README behaviours that had no test: `-vv` tracebacks, recursive predict over nested folders, `.pt`/`.bin`
weight files, `export --calibration-data DIR`, and float32 preprocessing inside quantised end-to-end models."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from click.testing import CliRunner
from helpers import CLASS_DICT, read_csv, spread_model_file, tiny_config

from dspl.cli.main import cli
from dspl.errors import DsplError
from dspl.models.registry import create_backbone


def run_dspl(*args: str) -> subprocess.CompletedProcess:
    """The installed program as a user runs it (a fresh process, so tracebacks reach stderr as they would)."""
    return subprocess.run([sys.executable, "-m", "dspl", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return spread_model_file(tmp_path_factory.mktemp("readme_model") / "model.h5", tiny_config(), CLASS_DICT)


# --- -vv: full tracebacks; otherwise one line -----------------------------------------------------------------

def test_a_user_error_is_one_line_without_vv_and_a_traceback_with_it(tmp_path):
    missing = tmp_path / "missing.h5"
    for flags in ([], ["-v"]):
        quiet = run_dspl(*flags, "stats", "-md", str(missing))
        assert quiet.returncode == 1
        assert quiet.stderr.strip().splitlines()[-1] == f"error: {missing}: model file not found"
        assert "Traceback" not in quiet.stderr + quiet.stdout
    loud = run_dspl("-vv", "stats", "-md", str(missing))
    assert loud.returncode == 1
    assert "Traceback (most recent call last):" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == f"dspl.errors.DsplError: {missing}: model file not found"


def test_vv_lets_the_error_propagate_in_process(tmp_path):
    result = CliRunner().invoke(cli, ["-vv", "stats", "-md", str(tmp_path / "missing.h5")])
    assert isinstance(result.exception, DsplError) and "model file not found" in str(result.exception)
    quiet = CliRunner().invoke(cli, ["stats", "-md", str(tmp_path / "missing.h5")])
    assert quiet.exit_code == 1 and isinstance(quiet.exception, SystemExit)


# --- predict is recursive -------------------------------------------------------------------------------------

def test_predict_scores_every_file_under_nested_folders(model_file, tmp_path, write_sine):
    data = tmp_path / "data"
    expected = {
        "top.wav": write_sine(data / "top.wav", 300, seconds=1.5),
        "a/one.wav": write_sine(data / "a" / "one.wav", 800, seconds=1.0),
        "a/b/two.flac": write_sine(data / "a" / "b" / "two.flac", 2000, seconds=2.0),
        "c/d/e/three.ogg": write_sine(data / "c" / "d" / "e" / "three.ogg", 4000, seconds=1.0),
    }
    (data / "a" / "notes.txt").write_text("not audio")
    result = CliRunner().invoke(cli, ["predict", "-md", str(model_file), "-d", str(data)])
    assert result.exit_code == 0, result.output
    out = model_file.parent / "test" / "test"
    grouped = read_csv(out / "test.grouped.predictions.csv")
    assert sorted(r["filename"] for r in grouped) == sorted(expected)
    chunks = read_csv(out / "test.chunks.predictions.csv")
    per_file = {name: sum(r["filename"] == name for r in chunks) for name in expected}
    # 1 s chunks every 0.5 s: 1.5 s -> 2 chunks, 1 s -> 1, 2 s -> 3
    assert per_file == {"top.wav": 2, "a/one.wav": 1, "a/b/two.flac": 3, "c/d/e/three.ogg": 1}


# --- weights files with the .pt and .bin suffixes -------------------------------------------------------------

@pytest.mark.parametrize(("suffix", "wrapped"), [(".pt", False), (".bin", False), (".pt", True)])
def test_pt_and_bin_weight_files_load(tmp_path, suffix, wrapped):
    torch.manual_seed(4)
    source = timm.create_model("test_resnet", num_classes=0)
    state = source.state_dict()
    path = tmp_path / f"weights{suffix}"
    torch.save({"state_dict": state} if wrapped else state, path)
    backbone = create_backbone("test_resnet", str(path))
    loaded = backbone.module.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    fresh = create_backbone("test_resnet", "").module.state_dict()  # the file made a difference
    assert not torch.equal(fresh["conv1.0.weight"], loaded["conv1.0.weight"])


def test_weights_file_through_the_config_trains_from_it(tmp_path):
    from dspl.models import create_model

    torch.manual_seed(5)
    source = timm.create_model("test_efficientnet", num_classes=0)
    path = tmp_path / "backbone.bin"
    torch.save(source.state_dict(), path)
    model = create_model(tiny_config(weights=str(path)).model, 3)
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)


# --- export --calibration-data DIR, and float32 preprocessing inside quantised end-to-end models ---------------

@pytest.fixture(scope="module")
def calibrated_export(model_file, tmp_path_factory):
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

    def lenient_exporter(options):
        return real_exporter(dataclasses.replace(options, min_agreement=0.0))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibration, "sample_chunks", recording_sample_chunks)
        mp.setattr(export_workflow, "Exporter", lenient_exporter)
        result = CliRunner().invoke(cli, ["export", "-s", str(model_file), "-o", str(work / "out"),
                                          "--quantize", "int8", "--end-to-end", "--calibration-data", str(calib_dir)])
    assert result.exit_code == 0, result.output
    return {"out": work / "out", "calib_dir": calib_dir, "seen": seen}


def test_calibration_data_dir_is_the_calibration_source(calibrated_export):
    calib_dir, seen = calibrated_export["calib_dir"], calibrated_export["seen"]
    assert len(seen) == 1  # calibration and verification chunks come from this one sample
    assert sorted(p.relative_to(calib_dir).as_posix() for p in seen[0]) == [
        "tone_0.wav", "x/tone_1.wav", "x/y/tone_2.wav", "z/tone_3.wav"]
    report = json.loads((calibrated_export["out"] / "export_report.json").read_text())
    assert str(calib_dir) in report["inputs"]
    assert {"tflite_int8", "end_to_end_int8"} <= set(report["steps"])
    assert (calibrated_export["out"] / "model_int8.tflite").is_file()


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


def test_predict_model_glob_with_double_star_reaches_every_depth(tmp_path):
    from dspl.workflows.predict import expand_model_paths

    for sub in ("a", "b/c", "b/c/d/e"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "model.h5").write_bytes(b"")
    (tmp_path / "b" / "other.h5").write_bytes(b"")
    found = expand_model_paths(tmp_path / "**" / "model.h5")
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/model.h5", "b/c/d/e/model.h5", "b/c/model.h5"]
    assert expand_model_paths(tmp_path / "*" / "*.h5") == [tmp_path / "a" / "model.h5", tmp_path / "b" / "other.h5"]
    with pytest.raises(DsplError, match="no model file found"):
        expand_model_paths(tmp_path / "*" / "missing.h5")
