"""Export building blocks without onnx2tf: splicing, metadata, verification, calibration, argument errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers import build_config, tiny_config, untrained_model

from dspl.cli.main import cli
from dspl.config import ClassConfig
from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.export import calibration, tflite_file, verify
from dspl.export.metadata import LABELS_FILE, PREPROCESSING_FILE, ModelInfo, add_metadata, associated_files
from dspl.export.tflite_convert import tflite_predict
from dspl.export.tflite_file import custom_operators


def _tflite(function, spec_shape, quantise: bool = False) -> bytes:
    import tensorflow as tf

    concrete = tf.function(function, input_signature=[tf.TensorSpec(spec_shape, tf.float32)]).get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantise:
        rng = np.random.default_rng(0)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 255, spec_shape).astype(np.float32)]
                                                    for _ in range(16))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


@pytest.fixture(scope="module")
def parts() -> dict[str, bytes]:
    """A float 'preprocessor' [1, 16] -> [1, 2, 2, 3] on 0..255 and an int8 'image model' [1, 2, 2, 3] -> [1, 3]."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    mix = rng.standard_normal((16, 12)).astype(np.float32)
    dense = rng.standard_normal((12, 3)).astype(np.float32)

    def preprocessor(audio):
        return tf.reshape(tf.sigmoid(tf.matmul(audio, mix)) * 255.0, [1, 2, 2, 3])

    def image(plot):
        return tf.nn.softmax(tf.matmul(tf.reshape(plot, [1, 12]) / 255.0 - 0.5, dense))

    return {"pre": _tflite(preprocessor, [1, 16]), "image": _tflite(image, [1, 2, 2, 3], quantise=True),
            "image_fp32": _tflite(image, [1, 2, 2, 3])}


def test_splice_runs_the_two_graphs_in_sequence(parts) -> None:
    from dspl.export.end_to_end import splice

    merged = splice(parts["pre"], parts["image"])
    assert custom_operators(merged) == []
    audio = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    plots = tflite_predict(parts["pre"], audio)
    np.testing.assert_array_equal(tflite_predict(merged, audio), tflite_predict(parts["image"], plots))


def test_splice_rejects_a_shape_mismatch(parts) -> None:
    from dspl.export.end_to_end import splice

    with pytest.raises(DsplError, match="does not fit"):
        splice(parts["image_fp32"], parts["image"])


def test_metadata_keeps_the_model_runnable_and_carries_files(parts) -> None:
    info = ModelInfo(name="m", description="d", version="1", labels=["x", "y", "z"], input_name="audio",
                     input_description="chunk", output_description="scores", sample_rate=16000,
                     preprocessing={"sample_rate": 16000})
    model = add_metadata(parts["image_fp32"], info)
    plot = np.full((1, 2, 2, 3), 100.0, np.float32)
    np.testing.assert_array_equal(tflite_predict(model, plot), tflite_predict(parts["image_fp32"], plot))
    files = associated_files(model)
    assert files[LABELS_FILE] == b"x\ny\nz\n"
    assert json.loads(files[PREPROCESSING_FILE]) == {"sample_rate": 16000}
    again = add_metadata(model[: len(model)], info)  # replacing metadata keeps one TFLITE_METADATA entry
    names = [entry.name for entry in tflite_file.unpack(again).metadata]
    assert names.count(b"TFLITE_METADATA") == 1


def test_verification_raises_clear_errors() -> None:
    reference = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert verify.check_close("step", reference, reference + 5e-5) <= 1e-4
    with pytest.raises(DsplError, match="step: max"):
        verify.check_close("step", reference, reference + 1e-3)
    with pytest.raises(DsplError, match="agreement 50.0 %"):
        verify.check_agreement("q", reference, reference[:, ::-1] * [[1, 1], [0, 0]] + [[0, 0], [0.2, 0.8]])
    with pytest.raises(DsplError, match="shape"):
        verify.max_difference(reference, reference[:1])
    assert verify.check_agreement("r", np.array([[0.5]]), np.array([[0.505]]), regression=True) > 0.98


def test_calibration_sources(tmp_path: Path, write_sine) -> None:
    from dspl.data.example import example_hp

    with pytest.raises(DsplError, match="no audio files"):
        find_audio_files(tmp_path)
    for i in range(3):
        write_sine(tmp_path / "sub" / f"f{i}.wav", frequency=300 * (i + 1), seconds=2.0)
    hp = build_config(example_hp()).spec
    chunks = calibration.sample_chunks(find_audio_files(tmp_path), hp, max_chunks=5)
    assert [chunk.shape for chunk in chunks] == [(16000,)] * 5
    synthetic = calibration.synthetic_chunks(hp, count=4)
    assert [chunk.shape for chunk in synthetic] == [(16000,)] * 4 and all(c.abs().amax() > 0 for c in synthetic)
    plots = calibration.make_plots(hp, synthetic)
    assert plots.shape == (4, 3, hp.image_height, hp.image_width) and 0 <= plots.min() and plots.max() <= 255


def test_whole_file_calibration_plots_each_file_from_its_own_samples(tmp_path: Path, write_sine) -> None:
    """Whole files keep their lengths (or take the export's fixed length), and each plot is its file's own."""
    from dspl.data.example import example_hp
    from dspl.features import PlotTransform

    files = [write_sine(tmp_path / f"f{i}.wav", frequency=500.0, seconds=seconds) for i, seconds in enumerate((0.6, 1.3))]
    hp = build_config({**example_hp(), "chunk_size": 0.0}).spec
    chunks = calibration.sample_chunks(files, hp)
    assert sorted(chunk.shape[0] for chunk in chunks) == [9600, 20800]
    plots = calibration.make_plots(hp, chunks)
    with torch.no_grad():
        alone = np.concatenate([PlotTransform(hp)(chunk[None]).numpy() for chunk in chunks])
    assert np.array_equal(plots, alone)
    fixed = calibration.sample_chunks(files, hp, num_samples=16000)
    assert [chunk.shape[0] for chunk in fixed] == [16000, 16000]
    assert calibration.longest_file_seconds(files, hp) == pytest.approx(1.3)
    synthetic = calibration.synthetic_chunks(hp, count=3)
    assert [chunk.shape[0] for chunk in synthetic] == [16000, 27200, 16000]


def test_onnx2tf_sample_file_from_plots(tmp_path: Path) -> None:
    from dspl.export.tf_convert import ONNX2TF_SAMPLE_FILE, write_onnx2tf_samples

    plots = np.random.default_rng(0).uniform(0, 255, (3, 40, 50, 3)).astype(np.float32)
    path = write_onnx2tf_samples(tmp_path, plots)
    samples = np.load(path)
    assert path.name == ONNX2TF_SAMPLE_FILE and samples.shape == (20, 128, 128, 3) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    np.testing.assert_allclose(samples[3, 0, 0], plots[0, 0, 0] / 255, rtol=1e-6)


@pytest.fixture
def tiny_loaded():
    from dspl.features import PlotTransform
    from dspl.models import LoadedModel

    config = tiny_config(num_units=4)
    classes = ClassConfig.from_dict({"a": "A", "b": "B"})
    return LoadedModel(untrained_model(config, 2), PlotTransform(config.spec).eval(), config, classes)


def test_export_argument_errors(tiny_loaded, tmp_path: Path) -> None:
    from dspl.export.exporter import Exporter, ExportOptions
    from dspl.export.inputs import InputSources

    with pytest.raises(DsplError, match="calibration audio"):
        ExportOptions(quantize=("int8",))
    with pytest.raises(DsplError, match="format: value tfjs"):
        ExportOptions(formats=("tfjs",))
    with pytest.raises(DsplError, match="quantize: value int4"):
        ExportOptions(quantize=("int4",))
    with pytest.raises(DsplError, match="data directory"):
        Exporter(ExportOptions(inputs=InputSources(label_file=tmp_path / "label.csv"))).export(tiny_loaded, tmp_path)
    with pytest.raises(DsplError, match="label file"):
        Exporter(ExportOptions(inputs=InputSources(data_dir=tmp_path))).export(tiny_loaded, tmp_path)


def test_onnx_export_checks_and_matches(tiny_loaded, tmp_path: Path) -> None:
    import onnx

    from dspl.export.onnx_export import export_onnx, onnx_predict

    path = export_onnx(tiny_loaded.model, (3, 32, 32), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert all(re.fullmatch(r"[A-Za-z0-9.][A-Za-z0-9_./>-]*", n.name) for n in model.graph.node)  # TF op names
    spec = tiny_loaded.config.spec
    plots = calibration.make_plots(spec, calibration.synthetic_chunks(spec, count=3))
    with torch.no_grad():
        expected = tiny_loaded.model(torch.from_numpy(plots)).numpy()
    assert np.max(np.abs(onnx_predict(path, plots) - expected)) <= 1e-5
    with pytest.raises(DsplError, match="opset"):
        export_onnx(tiny_loaded.model, (3, 32, 32), tmp_path / "old.onnx", opset=13)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "-s", str(tmp_path / "missing.h5"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "not found" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["convert", "-s", str(tmp_path / "missing.h5"), "-d", str(tmp_path / "m.tflite")])
    assert result.exit_code == 1 and "not found" in result.output


def test_padded_max_pooling_becomes_exact_zero_padding(tmp_path: Path) -> None:
    """onnx2tf pads padded/ceil-mode pooling with the float minimum (breaks int8); after ReLU zero padding is exact."""
    import onnx

    from dspl.export.onnx_export import export_onnx, onnx_predict

    class Pools(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x)
            a = torch.nn.functional.max_pool2d(y, 3, 2, ceil_mode=True)
            b = torch.nn.functional.max_pool2d(torch.cat([y, y], 1), 3, 2, padding=1, ceil_mode=True)
            c = torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)  # may be negative: left alone
            d = torch.nn.functional.max_pool2d(y, 3, 2, padding=1)  # ResNet's stem pooling
            return torch.cat([a.flatten(1), b.flatten(1), c.flatten(1), d.flatten(1)], 1)

    for size in [(3, 22, 23), (3, 8, 9)]:
        path = export_onnx(Pools(), size, tmp_path / "pools.onnx")
        nodes = onnx.load(str(path)).graph.node
        assert [n.op_type for n in nodes].count("Pad") == 3
        pools = [n for n in nodes if n.op_type == "MaxPool"]
        assert sum(a.i for n in pools for a in n.attribute if a.name == "ceil_mode") == 1
        x = np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)
        np.testing.assert_array_equal(onnx_predict(path, x), Pools()(torch.from_numpy(x)).numpy())


def test_cli_export_onnx_only(tiny_loaded, tmp_path: Path) -> None:
    """`dspl export --format onnx` stops after the verified ONNX step (no TensorFlow conversion)."""
    from dspl.models.modelfile import save_model_file

    model_file = save_model_file(tmp_path / "model.h5", tiny_loaded.model, tiny_loaded.config, tiny_loaded.classes)
    result = CliRunner().invoke(cli, ["export", "-s", str(model_file), "-o", str(tmp_path / "out"), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert "onnx:" in result.output and not (tmp_path / "out" / "saved_model").exists()
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert report["steps"]["onnx"]["check"] <= 1e-4 and report["inputs"] == "synthetic tones"


def test_a_converter_that_kills_its_process_ends_as_a_clear_error() -> None:
    import os

    from dspl.export.tflite_convert import run_isolated

    assert run_isolated(divmod, 7, 2, what="x") == (3, 1)
    with pytest.raises(DsplError, match=r"model.onnx \(int8\): TensorFlow crashed converting or running the model"):
        run_isolated(os.abort, what="model.onnx (int8)")
