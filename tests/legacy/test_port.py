"""`dspl import-keras` (dspl.legacy.port): the ported PyTorch model matches the Keras one, caffe-scaled
backbones, refused backbones, and training from the imported model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import DSL_CLASSES, DSL_DETERMINISTIC, DSL_MODELS, dsl_configs, dsl_given, one_error_line, run

from dspl.config import GivenConfigs
from dspl.errors import DsplError


@pytest.mark.slow
@pytest.mark.parametrize("name", DSL_DETERMINISTIC)
def test_import_keras_matches_the_keras_model(name, tmp_path):
    from dspl.export.calibration import synthetic_chunks
    from dspl.legacy.keras_model import TFPlots, load_legacy_model
    from dspl.legacy.scaling import scale
    from dspl.loading import load_model_file

    output = tmp_path / "model_dspl.h5"
    result = run("import-keras", "-s", str(DSL_MODELS / name / "model.h5"), *dsl_configs(name), "-o", str(output))
    assert result.exit_code == 0, result.output
    ported = load_model_file(output)  # rebuilt from the file alone
    assert ported.config.model.basemodel_name == f"keras_{name}"
    legacy = load_legacy_model(DSL_MODELS / name / "model.h5", dsl_given(name))
    features = TFPlots(legacy.config.spec)
    plots = torch.cat([features(chunk.reshape(1, -1)) for chunk in synthetic_chunks(legacy.config.spec)])
    with torch.no_grad():
        assert float((ported.model(plots) - legacy.model(plots)).abs().max()) <= 1e-4
        keras = legacy.model.keras_model
        (base,) = [layer for layer in keras.layers if hasattr(layer, "layers")]
        nhwc = plots.numpy().transpose(0, 2, 3, 1)
        keras_pooled = np.asarray(base(scale(nhwc, legacy.model.mode), training=False)).mean(axis=(1, 2))
        torch_pooled = ported.model.features(plots).numpy()
    magnitude = np.abs(keras_pooled).max()
    assert magnitude > 0 and np.abs(torch_pooled - keras_pooled).max() <= 1e-4 * max(1.0, magnitude)


def dsl_shaped_keras_model(name: str, path: Path) -> None:
    """A model.h5 shaped as DeepSpectrumLite's (input -> Keras application without top, training=False ->
    pooling -> Dense relu -> Dropout -> Dense softmax) with random BatchNorm statistics, made by tf_keras."""
    import tf_keras

    from dspl.legacy.keras_objects import custom_objects

    tf_keras.utils.set_random_seed(0)
    applications = {"resnet50": tf_keras.applications.ResNet50, "vgg16": tf_keras.applications.VGG16}
    base = applications[name](weights=None, include_top=False)
    rng = np.random.default_rng(0)
    for layer in base.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 2.0, variance.shape)])
    inputs = tf_keras.Input((32, 32, 3))
    x = tf_keras.layers.Flatten()(tf_keras.layers.GlobalAveragePooling2D()(base(inputs, training=False)))
    x = tf_keras.layers.Dropout(0.1)(tf_keras.layers.Dense(16, activation="relu")(x))
    outputs = tf_keras.layers.Dense(3, activation="softmax")(x)
    custom_objects()["AugmentableModel"](inputs=inputs, outputs=outputs, name=name).save(str(path), save_format="h5")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_import_keras_of_caffe_scaled_backbones(name, tmp_path):
    from dspl.export.calibration import synthetic_chunks
    from dspl.legacy.keras_model import TFPlots, load_legacy_model
    from dspl.loading import load_model_file

    source = tmp_path / "model.h5"
    dsl_shaped_keras_model(name, source)
    grid = json.loads((DSL_MODELS / "squeezenet_v1" / "hp_config.json").read_text())
    grid.update(basemodel_name=[name], activation=["relu"])
    hp_file = tmp_path / "hp_config.json"
    hp_file.write_text(json.dumps(grid))
    output = tmp_path / "model_dspl.h5"
    result = run("import-keras", "-s", str(source), "-hc", str(hp_file), "-cc", str(DSL_CLASSES), "-o", str(output))
    assert result.exit_code == 0, result.output
    legacy = load_legacy_model(source, GivenConfigs.read(hp_file, DSL_CLASSES))
    ported = load_model_file(output)
    features = TFPlots(legacy.config.spec)
    plots = torch.cat([features(chunk.reshape(1, -1)) for chunk in synthetic_chunks(legacy.config.spec)])
    with torch.no_grad():
        assert float((ported.model(plots) - legacy.model(plots)).abs().max()) <= 1e-4


def test_import_keras_refuses_a_backbone_it_cannot_port_exactly():
    from dspl.legacy.port import _check_supported

    with pytest.raises(DsplError, match=r"'xception' cannot be ported exactly.*mobilenet_v2, densenet121.*resnet50"):
        _check_supported("xception")


@pytest.mark.parametrize("name", ["model.h5", "model.ckpt"])
def test_import_keras_of_a_dspl_model_says_it_needs_no_import(untrained_model_file, tmp_path, name):
    source = tmp_path / name
    source.write_bytes(untrained_model_file.read_bytes())
    one_error_line(run("import-keras", "-s", str(source), *dsl_configs("squeezenet_v1"), "-o", str(tmp_path / "x.h5")),
                   f"{source}: a dspl model file already: predict, export and train's `weights:` take it as it is; "
                   "import-keras ports DeepSpectrumLite's Keras models")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_training_fine_tunes_from_an_imported_model(tmp_path):
    from dspl.loading import load_model_file

    imported = tmp_path / "imported.h5"
    assert run("import-keras", "-s", str(DSL_MODELS / "squeezenet_v1" / "model.h5"), *dsl_configs("squeezenet_v1"),
               "-o", str(imported)).exit_code == 0
    grid = json.loads((DSL_MODELS / "squeezenet_v1" / "hp_config.json").read_text())
    grid.update(basemodel_name=["keras_squeezenet_v1"], weights=[str(imported)], pre_epochs=[0], epochs=[1])
    hp_file = tmp_path / "hp_config.json"
    hp_file.write_text(json.dumps(grid))
    result = run("train", "-d", str(DSL_MODELS / "audio"), "-md", str(tmp_path / "out"), "-hc", str(hp_file),
                 "-cc", str(DSL_CLASSES), "-l", str(DSL_MODELS / "label.csv"))
    assert result.exit_code == 0, result.output
    trained = load_model_file(tmp_path / "out" / "models" / "fixture" / "run_config_0" / "model.h5")
    start = load_model_file(imported)
    after, before = trained.model.state_dict(), start.model.state_dict()
    assert trained.config.model.basemodel_name == "keras_squeezenet_v1"
    assert not torch.equal(after["head.output.weight"], before["head.output.weight"])  # it trained
    for key in ("backbone.features.0.weight", "backbone.features.12.expand3x3.weight"):  # from the import
        assert float((after[key] - before[key]).abs().max()) <= 0.1 * float(before[key].abs().max())
