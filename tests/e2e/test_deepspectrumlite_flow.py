"""DeepSpectrumLite's documented command sequence, command by command on one output directory, as its tests ran it."""

import json

import h5py
from click.testing import CliRunner

from dspl.cli.main import cli
from dspl.export.tflite_file import custom_operators


def test_train_predict_devel_test_stats_convert_tflite_stats_create_preprocessor(example_dir, tmp_path):
    grid = json.loads((example_dir / "hp_config.json").read_text())
    grid.update(basemodel_name=["test_efficientnet"], image_width=[32], image_height=[32], epochs=[1],
                batch_size=[8], num_units=[8], tb_experiment=["densenet_exp"], tb_run_id=["densenet121_run"])
    hp = tmp_path / "hp_config.json"
    hp.write_text(json.dumps(grid))
    cc, labels, audio = example_dir / "class_config.json", example_dir / "label.csv", example_dir / "audio"
    output = tmp_path / "output"
    run_dir = output / "models" / "densenet_exp" / "densenet121_run_config_0"
    model = run_dir / "model.h5"
    steps = [
        ["train", "-d", audio, "-md", output, "-hc", hp, "-cc", cc, "-l", labels],
        ["predict", "-d", audio, "-md", model, "-hc", hp, "-cc", cc],
        ["devel-test", "-d", audio, "-md", model, "-hc", hp, "-cc", cc, "-l", labels],
        ["stats", "-md", model],
        ["convert", "-s", model, "-d", run_dir / "converted_model.tflite"],
        ["tflite-stats", "-md", run_dir / "converted_model.tflite"],
        ["create-preprocessor", "-hc", hp, "-d", output / "preprocessor.tflite"],
    ]
    for step in steps:
        result = CliRunner().invoke(cli, ["-vv", *map(str, step)], catch_exceptions=False)
        assert result.exit_code == 0, f"{step[0]}: {result.output[-2000:]}"
    assert (output / "logs" / "densenet_exp" / "densenet121_run_config_0").is_dir()
    assert (run_dir / "test" / "test" / "test.chunks.predictions.csv").is_file()
    for partition in ("devel", "test"):
        for name in ("chunks.metrics.json", "grouped.metrics.json", "chunks.predictions.csv",
                     "grouped.predictions.csv"):
            assert (run_dir / "evaluation" / partition / f"{partition}.{name}").is_file()
    with h5py.File(run_dir / "converted_model_weights_infos.hdf5", "r") as f:
        assert len(f.keys()) > 0
    for tflite in (run_dir / "converted_model.tflite", output / "preprocessor.tflite"):
        assert custom_operators(tflite) == []
