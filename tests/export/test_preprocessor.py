"""The TFLite preprocessor: built-in operators only, runs in LiteRT, matches the torch plots; its CLI; the op lister."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import BASE, assert_features_close, assert_images_close, make_signals, parity_config, torch_output

from dspl.cli.main import cli
from dspl.errors import DsplError
from dspl.export.preprocessor import create_preprocessor
from dspl.export.tf_reference import TFPlotPipeline
from dspl.export.tflite_file import custom_operators, tflite_operators

CASES = [
    pytest.param(dict(), id="mel-db-bilinear-two-stage-dft"),
    pytest.param(dict(stft_fft_length=0.0250625), id="prime-fft-length-one-dft-matrix"),
    pytest.param(dict(stft_fft_length=0.064, resize_method="bicubic", anti_alias=False), id="fft-1024-bicubic"),
    pytest.param(dict(num_mfccs=13, cep_lifter=22, resize_method="lanczos3", color_map="magma", sample_rate=8000,
                      image_height=24, image_width=56), id="mfcc-lanczos3-8k"),
    pytest.param(dict(mel_scale=False, resize_method="area", color_map="cividis", sample_rate=44100,
                      stft_fft_length=0.05), id="linear-area-44k"),
    pytest.param(dict(use_plot_images=False), id="raw-features"),
    pytest.param(dict(use_plot_images=False, top_db=30.0), id="raw-features-top-db"),
    pytest.param(dict(use_plot_images=False, stft_window_size=0.128, stft_hop_size=0.064, stft_fft_length=0.128),
                 id="raw-features-half-overlap"),
]


def run_litert(path, audio: np.ndarray) -> np.ndarray:
    """Invoke a .tflite file once per chunk with the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for chunk in audio:
        interpreter.set_tensor(source["index"], chunk[None, :])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(target["index"])[0])
    return np.stack(outputs)


@pytest.mark.parametrize("overrides", CASES)
def test_preprocessor_matches_torch_with_builtin_operators(tmp_path, overrides):
    hp = parity_config(**overrides).spec
    path = create_preprocessor(hp, tmp_path / "out" / "preprocessor.tflite")
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["preprocessor.tflite"]
    operators = tflite_operators(path)
    assert operators and custom_operators(path) == []
    assert not [op for op in operators if op.startswith("Flex") or op == "CUSTOM"]
    assert not {"RFFT2D", "REAL", "IMAG", "COMPLEX_ABS"} & set(operators)  # products, no complex tensors

    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    tflite = run_litert(path, audio)
    pipeline = TFPlotPipeline(hp)
    assert tflite.shape == (3, *pipeline.output_shape)
    if hp.use_plot_images:
        assert_images_close(tflite, pipeline(audio).numpy())
        assert_images_close(tflite, torch_output(hp, audio))
    else:
        assert_features_close(hp, tflite, pipeline(audio).numpy())
        assert_features_close(hp, tflite, torch_output(hp, audio))


@pytest.mark.parametrize("window, hop, gathered", [
    (0.128, 0.064, False),  # DeepSpectrumLite's 50 % overlap: 2 hop-sized blocks per frame
    (0.025, 0.025, False),  # no overlap: 1 block
    (0.025, 0.00125, True),  # 20 blocks per frame: more operators than one GATHER is worth
    (0.025, 0.01, True),  # the hop does not divide the window
])
def test_frames_are_sliced_from_blocks_where_the_hop_divides_the_window(tmp_path, window, hop, gathered):
    """Raw features gather only to frame (plots also gather their colours), so GATHER shows the framing."""
    hp = parity_config(use_plot_images=False, stft_window_size=window, stft_hop_size=hop, stft_fft_length=window).spec
    path = create_preprocessor(hp, tmp_path / "preprocessor.tflite")
    assert ("GATHER" in tflite_operators(path)) == gathered
    audio = make_signals(hp.sample_rate, hp.chunk_samples)
    assert_features_close(hp, run_litert(path, audio), TFPlotPipeline(hp)(audio).numpy())


def test_whole_file_preprocessor_needs_a_length_unless_its_resize_is_a_builtin_kernel(tmp_path):
    with pytest.raises(DsplError, match="resize_method: value 'bilinear' .* needs a fixed number of samples: "
                                        "pass --whole-file-seconds$"):
        create_preprocessor(parity_config(chunk_size=0.0).spec, tmp_path / "p.tflite")
    assert not list(tmp_path.iterdir())
    with pytest.raises(DsplError, match="applies only to whole-file configurations"):
        parity_config().spec.input_samples(1.0)
    hp = parity_config(chunk_size=0.0, resize_method="lanczos3").spec
    fixed = create_preprocessor(hp, tmp_path / "fixed.tflite", hp.input_samples(0.5))
    audio = make_signals(16000, 8000)
    assert_images_close(run_litert(fixed, audio), torch_output(hp, audio))


@pytest.mark.parametrize("method, antialias", [("nearest", False), ("bilinear", False)])
def test_whole_file_preprocessor_takes_any_length(tmp_path, method, antialias):
    """Nearest and non-anti-aliased bilinear resize with TFLite's built-in kernels: one model, any input length."""
    from ai_edge_litert.interpreter import Interpreter

    hp = parity_config(chunk_size=0.0, resize_method=method, anti_alias=antialias).spec
    path = create_preprocessor(hp, tmp_path / "any.tflite")
    assert custom_operators(path) == []
    interpreter = Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(source["shape_signature"]) == [1, -1]
    for length in (2999, 11025):
        audio = make_signals(16000, length)
        interpreter.resize_tensor_input(source["index"], [1, length])
        interpreter.allocate_tensors()
        plots = []
        for chunk in audio:
            interpreter.set_tensor(source["index"], chunk[None, :])
            interpreter.invoke()
            plots.append(interpreter.get_tensor(target["index"])[0])
        assert_images_close(np.stack(plots), torch_output(hp, audio))


def test_cli_writes_preprocessor(tmp_path):
    grid = {key: [value] for key, value in BASE.items()}
    grid["image_width"] = [40, 24]
    config = tmp_path / "hp.json"
    config.write_text(json.dumps(grid))
    destination = tmp_path / "pre.tflite"
    result = CliRunner().invoke(cli, ["create-preprocessor", "-hc", str(config), "-d", str(destination),
                                      "--config-index", "1"])
    assert result.exit_code == 0, result.output
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(destination))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 4000]
    assert list(interpreter.get_output_details()[0]["shape"]) == [1, 32, 24, 3]


def test_cli_reports_bad_config_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["create-preprocessor", "-hc", str(tmp_path / "missing.json"),
                                      "-d", str(tmp_path / "p.tflite")])
    assert result.exit_code == 1
    assert "missing.json: hyper-parameter config not found" in result.output and "Traceback" not in result.output


def test_operator_lister_names_flex_and_custom_operators(tmp_path):
    import tensorflow as tf

    def convert(fn) -> bytes:
        function = tf.function(fn, input_signature=[tf.TensorSpec([4], tf.float32)]).get_concrete_function()
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        converter.allow_custom_ops = True
        return converter.convert()

    flex = convert(lambda x: tf.math.cumprod(x) + 1.0)
    assert tflite_operators(flex) == ["FlexCumprod", "ADD"] and custom_operators(flex) == ["FlexCumprod"]
    path = tmp_path / "custom.tflite"
    path.write_bytes(convert(lambda x: tf.math.igamma(x, x)))
    assert custom_operators(path) == ["Igamma"]
    (tmp_path / "text.tflite").write_text("not a model")
    with pytest.raises(DsplError, match="not a TFLite model"):
        tflite_operators(tmp_path / "text.tflite")
