"""The configs given beside a DeepSpectrumLite model (dspl.legacy.configs): missing ones are named, another
model's are refused."""

from __future__ import annotations

from helpers import DSL_CLASSES, DSL_MODELS, dsl_configs, dsl_model_copy, run


def test_missing_configs_are_named(tmp_path):
    result = run("predict", "-md", str(dsl_model_copy("squeezenet_v1", tmp_path)), "-d", str(DSL_MODELS / "audio"),
                 "-cc", str(DSL_CLASSES))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "-hc HP_CONFIG" in result.output and "does not hold its configs" in \
        result.output


def test_configs_of_another_model_are_refused(tmp_path):
    result = run("predict", "-md", str(dsl_model_copy("squeezenet_v1", tmp_path)), "-d", str(DSL_MODELS / "audio"),
                 *dsl_configs("densenet121"))
    assert result.exit_code == 1 and "basemodel_name is 'densenet121' but the model is a 'squeezenet_v1'" in \
        result.output
