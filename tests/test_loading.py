"""dspl.loading: `dspl.load_model` of a model file or its Lightning checkpoint; a Keras file that is not
DeepSpectrumLite's is named as such."""

import json

import h5py
import torch
import pytest
from helpers import one_error_line, run

import dspl


def test_load_model_returns_eval_model_with_configs(trained_model, example_dir):
    predictor = dspl.load_model(trained_model)
    assert not predictor.model.training
    assert predictor.classes.to_dict() == json.loads((example_dir / "class_config.json").read_text())
    assert predictor.config.model.basemodel_name == "test_efficientnet"


def test_the_lightning_checkpoint_loads_to_the_same_model(trained_model):
    checkpoint = trained_model.with_name("model.ckpt")
    from_h5, from_ckpt = dspl.load_model(trained_model), dspl.load_model(checkpoint)
    assert from_ckpt.config == from_h5.config and from_ckpt.classes == from_h5.classes
    x = torch.rand(2, 3, from_h5.config.spec.image_height, from_h5.config.spec.image_width) * 255
    with torch.no_grad():
        assert torch.equal(from_h5.model(x), from_ckpt.model(x))


def test_keras_h5_is_refused_with_a_clear_message(tmp_path, example_dir):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.5.0"
        f.attrs["backend"] = "tensorflow"
    result = run("predict", "-md", str(path), "-d", str(example_dir / "audio"))
    assert result.exit_code == 1 and "Keras" in result.output


@pytest.mark.parametrize("command", ["predict", "stats"])
def test_a_tflite_model_given_as_a_trained_model_is_named_as_one(tmp_path, example_dir, command):
    """h5py would call it a damaged file ("file signature not found")."""
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(56))
    args = ["-md", str(path)] + (["-d", str(example_dir / "audio")] if command == "predict" else [])
    one_error_line(run(command, *args), f"{path}: a TFLite model, not a model file dspl or DeepSpectrumLite trained: "
                                        "`dspl tflite-stats -md` and `dspl benchmark -e` take TFLite models")
