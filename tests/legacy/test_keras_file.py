"""Recognising DeepSpectrumLite's Keras files (dspl.legacy.keras_file): other Keras files and truncated ones get
one line."""

from __future__ import annotations

from helpers import DSL_MODELS, dsl_configs, run


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
