"""Recognising DeepSpectrumLite's Keras files (dspl.legacy.keras_file): other Keras files and truncated ones get
one line."""

from __future__ import annotations

from helpers import DSL_MODELS, dsl_configs, one_error_line, run


def test_keras_file_that_is_not_deepspectrumlites_gets_one_line(tmp_path):
    import tf_keras

    path = tmp_path / "other_0" / "model.h5"
    path.parent.mkdir()
    model = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)])
    model.save(str(path), save_format="h5")
    result = run("predict", "-md", str(path), "-d", str(DSL_MODELS / "audio"), *dsl_configs("squeezenet_v1"))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "a Keras model (Sequential) but not one DeepSpectrumLite trained" in result.output


def test_truncated_keras_file_gets_one_line(tmp_path):
    path = tmp_path / "cut_0" / "model.h5"
    path.parent.mkdir()
    path.write_bytes((DSL_MODELS / "squeezenet_v1" / "model.h5").read_bytes()[:100_000])
    result = run("predict", "-md", str(path), "-d", str(DSL_MODELS / "audio"), *dsl_configs("squeezenet_v1"))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "truncated or corrupt" in result.output


def test_a_keras_model_config_json_cannot_take_is_one_line(tmp_path):
    """The config inside a model file is user-given JSON too (dspl.config.parse_json): 200 levels of nesting made
    Python's parser recurse."""
    import h5py

    path = tmp_path / "deep_0" / "model.h5"
    path.parent.mkdir()
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.5.0"
        f.attrs["model_config"] = "[" * 200 + "]" * 200
        f.create_group("model_weights")
    one_error_line(run("predict", "-md", str(path), "-d", str(DSL_MODELS / "audio"), *dsl_configs("squeezenet_v1")),
                   f"{path} (its Keras model config): not valid JSON: arrays and objects nested 200 levels deep, "
                   "expected at most 100")
