"""dspl.loading: `dspl.load_model` of a model file or its Lightning checkpoint; a Keras file that is not
DeepSpectrumLite's is named as such."""

import json

import h5py
import torch
from helpers import run

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
