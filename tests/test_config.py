"""The hyper-parameter grid: expansion order, SLURM selection, schema errors; the class config."""

import itertools
import json

import pytest

from dspl.config import SCHEMA, ClassConfig, check_class_config, load_class_config, load_grid, select_configurations
from dspl.config.schema import PREPROCESSING_KEYS, REQUIRED
from dspl.errors import DsplError

BASE = {
    "label_parser": ["../lib/data/parser/ComParEParser.py:ComParEParser"],
    "basemodel_name": ["densenet121"],
    "tb_experiment": ["exp"],
    "tb_run_id": ["run"],
    "num_units": [4],
    "dropout": [0.25],
    "optimizer": ["adadelta"],
    "learning_rate": [0.001],
    "finetune_layer": [0.7],
    "loss": ["categorical_crossentropy"],
    "activation": ["arelu"],
    "pre_epochs": [1],
    "batch_size": [1],
    "sample_rate": [16000],
    "chunk_size": [2.0],
    "chunk_hop_size": [1.0],
    "stft_window_size": [0.128],
    "stft_hop_size": [0.064],
    "stft_fft_length": [0.128],
    "mel_scale": [True],
    "lower_edge_hertz": [0.0],
    "upper_edge_hertz": [8000.0],
    "cep_lifter": [0],
    "db_scale": [True],
    "use_plot_images": [True],
    "color_map": ["viridis"],
    "image_width": [224],
    "image_height": [224],
    "sap_aug_a": [0.5],
    "sap_aug_s": [10],
    "augment_cutmix": [True],
    "augment_specaug": [True],
}


def write(tmp_path, grid, name="hp.json"):
    path = tmp_path / name
    path.write_text(json.dumps(grid))
    return path


def error_of(tmp_path, **changes):
    grid = {**BASE, **changes}
    grid = {k: v for k, v in grid.items() if v is not None}
    path = write(tmp_path, grid)
    with pytest.raises(DsplError) as info:
        load_grid(path)
    return str(info.value).replace(str(path), "HP")


def test_grid_follows_itertools_product_order(tmp_path):
    varied = {"batch_size": [8, 16, 32], "dropout": [0.1, 0.5], "color_map": ["viridis", "magma"]}
    grid = {**BASE, **varied}
    configs = load_grid(write(tmp_path, grid))
    expected = list(itertools.product(*grid.values()))
    assert len(configs) == len(expected) == 12
    for config, values in zip(configs, expected):
        assert tuple(config.to_dict()[k] for k in grid) == values
    # the last key of the file varies fastest
    assert [c.preprocessing.color_map for c in configs[:2]] == ["viridis", "magma"]
    # file order here: dropout, batch_size, color_map (BASE fixes the position of existing keys)
    assert [c.training.batch_size for c in configs[::2]] == [8, 16, 32] * 2
    assert [c.model.dropout for c in configs[::6]] == [0.1, 0.5]


def test_defaults_are_filled_and_ints_become_floats(tmp_path):
    config = load_grid(write(tmp_path, BASE))[0].to_dict()
    assert list(config) == list(SCHEMA)
    assert config["prediction_type"] == "categorical"
    assert config["weights"] == "imagenet"
    assert config["resize_method"] == "bilinear" and config["anti_alias"] is True
    assert config["num_mel_bins"] == 128 and config["num_mfccs"] == 0
    assert config["normalize_audio"] is False and config["epochs"] == 0
    assert config["output_activation"] is None
    assert config["sap_aug_s"] == 10.0 and isinstance(config["sap_aug_s"], float)


def test_every_required_key_is_in_the_base_grid():
    required = {name for name, key in SCHEMA.items() if key.default is REQUIRED}
    assert required == set(BASE)


def test_readme_table_spelling_num_unit_is_accepted(tmp_path):
    grid = {k: v for k, v in BASE.items() if k != "num_units"}
    grid["num_unit"] = [64]
    assert load_grid(write(tmp_path, grid))[0].model.num_units == 64


def test_slurm_task_selects_one_configuration(tmp_path):
    configs = load_grid(write(tmp_path, {**BASE, "batch_size": [8, 16, 32]}))
    assert select_configurations(configs, {}) == list(enumerate(configs))
    assert select_configurations(configs, {"SLURM_ARRAY_TASK_ID": "2"}) == [(2, configs[2])]
    with pytest.raises(DsplError, match=r"SLURM_ARRAY_TASK_ID=3 is outside the grid: it has 3 configuration\(s\), 0 to 2"):
        select_configurations(configs, {"SLURM_ARRAY_TASK_ID": "3"})
    with pytest.raises(DsplError, match="SLURM_ARRAY_TASK_ID='x' is not an integer"):
        select_configurations(configs, {"SLURM_ARRAY_TASK_ID": "x"})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"num_mel_bin": [64]}, "HP: unknown key 'num_mel_bin' (did you mean 'num_mel_bins'?)"),
        ({"colour_map": ["viridis"]}, "HP: unknown key 'colour_map' (did you mean 'color_map'?)"),
        ({"zzz": [1]}, "HP: unknown key 'zzz'"),
        ({"batch_size": ["32"]}, "HP: key 'batch_size': value \"32\" is not of type int"),
        ({"batch_size": [1.5]}, "HP: key 'batch_size': value 1.5 is not of type int"),
        ({"db_scale": [1]}, "HP: key 'db_scale': value 1 is not of type bool"),
        ({"dropout": []}, "HP: key 'dropout': the list of values is empty, expected at least one value"),
        ({"dropout": 0.5}, "HP: key 'dropout': expected a list of values, got 0.5"),
        ({"batch_size": [-4]}, "HP: key 'batch_size': value -4 is out of range, expected a number > 0"),
        ({"image_width": [0]}, "HP: key 'image_width': value 0 is out of range, expected a number > 0"),
        ({"finetune_layer": [1.5]}, "HP: key 'finetune_layer': value 1.5 is out of range, expected a number in [0, 1]"),
        ({"color_map": ["jet"]}, "HP: key 'color_map': value \"jet\" is not one of viridis, cividis, inferno, magma, plasma"),
        ({"optimizer": ["adamw"]}, "HP: key 'optimizer': value \"adamw\" is not one of adam, adadelta, sgd, adagrad, ftrl, nadam, rmsprop"),
        ({"sample_rate": None}, "HP: required key 'sample_rate' is missing"),
        ({"upper_edge_hertz": [9000.0]},
         "HP (configuration 0): key 'upper_edge_hertz': value 9000.0 is above the Nyquist frequency 8000 of sample_rate 16000"),
        ({"stft_fft_length": [0.064]},
         "HP (configuration 0): key 'stft_fft_length': value 0.064 is shorter than stft_window_size (0.128)"),
        ({"da_prob_min": [0.6]}, "HP (configuration 0): key 'da_prob_min': value 0.6 is above da_prob_max (0.5)"),
    ],
)
def test_schema_errors_name_file_key_value_and_expectation(tmp_path, changes, message):
    assert error_of(tmp_path, **changes) == message


def test_missing_keys_are_all_named(tmp_path):
    message = error_of(tmp_path, sample_rate=None, batch_size=None)
    assert message == "HP: required key 'batch_size' is missing (and 1 more: sample_rate)"


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"a": [1],\n "b": }')
    with pytest.raises(DsplError, match=r"bad.json: malformed JSON at line 2, column 7"):
        load_grid(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(DsplError, match="nope.json: file not found"):
        load_grid(tmp_path / "nope.json")


def test_not_an_object(tmp_path):
    with pytest.raises(DsplError, match="expected a JSON object of lists, got list"):
        load_grid(write(tmp_path, [1, 2]))


def test_class_config_categorical_and_regression(tmp_path):
    path = write(tmp_path, {"dog": "Dog", "seagull": "Seagull"}, "cc.json")
    classes = load_class_config(path)
    assert classes.labels == ("dog", "seagull") and classes.names == ("Dog", "Seagull")
    assert classes.index("seagull") == 1
    with pytest.raises(DsplError, match=r"labels.csv: class label 'cat' is not in the class config \(known: dog, seagull\)"):
        classes.index("cat", "labels.csv")
    check_class_config(classes, "categorical")
    with pytest.raises(DsplError, match="a regression class config has exactly one entry"):
        check_class_config(classes, "regression")
    regression = ClassConfig.from_dict({"a": "Arousal"})
    check_class_config(regression, "regression")
    with pytest.raises(DsplError, match="needs at least two classes"):
        check_class_config(regression, "categorical")


def test_shipped_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    configs = load_grid(root / "hp_config.json")
    classes = load_class_config(root / "class_config.json")
    assert len(configs) >= 1
    check_class_config(classes, configs[0].prediction_type)


def _another_value(name: str, value: object) -> object:
    """A different, plausible value of a key (what a user might change it to)."""
    key = SCHEMA[name]
    if value is None:
        return {float: 60.0, str: "sigmoid"}[key.type]
    if key.choices:
        return next(choice for choice in key.choices if choice != value)
    if key.type is bool:
        return not value
    if key.type is int:
        return value + 1
    if key.type is float:
        return value * 0.9 if value else 0.5
    return f"{value}_changed"


def test_the_preprocessing_keys_are_exactly_those_the_spec_reads():
    """Changing a key changes the configuration's PreprocessingSpec if and only if the schema puts it in the
    preprocessing part."""
    import dataclasses

    from dspl.config import RunConfig
    from dspl.data.example import example_hp

    config = RunConfig.from_dict({**example_hp(), "num_mfccs": 20})
    values = config.to_dict()
    changeable = [name for name in SCHEMA if len(SCHEMA[name].choices) != 1]  # model_name has one value only

    def spec_with(name: str) -> object:
        other = _another_value(name, values[name])
        if name in PREPROCESSING_KEYS:  # one part alone: combinations a grid refuses still make a spec
            return dataclasses.replace(config.preprocessing, **{name: other}).spec
        return config.replace(**{name: other}).spec

    changes_spec = {name for name in changeable if spec_with(name) != config.spec}
    assert changes_spec == set(PREPROCESSING_KEYS)
    assert len(PREPROCESSING_KEYS) == 21
