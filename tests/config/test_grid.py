"""The hyper-parameter grid (dspl.config.grid): expansion order, SLURM selection, schema errors, bad values
caught before training, the shipped configs."""

from __future__ import annotations

import itertools
import json

import pytest
from helpers import DSL_MODELS, ROOT, grid_file, one_error_line, run, tiny_config, train_args, write_json

from dspl.config import SCHEMA, check_class_config, load_class_config, load_grid, parse_json, select_configurations
from dspl.config.grid import MAX_JSON_DEPTH
from dspl.config.schema import REQUIRED
from dspl.config.settings import MAX_FFT_SAMPLES
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


def error_of(tmp_path, **changes):
    grid = {**BASE, **changes}
    grid = {k: v for k, v in grid.items() if v is not None}
    path = write_json(tmp_path, grid)
    with pytest.raises(DsplError) as info:
        load_grid(path)
    return str(info.value).replace(str(path), "HP")


def test_grid_follows_itertools_product_order(tmp_path):
    varied = {"batch_size": [8, 16, 32], "dropout": [0.1, 0.5], "color_map": ["viridis", "magma"]}
    grid = {**BASE, **varied}
    configs = load_grid(write_json(tmp_path, grid))
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
    config = load_grid(write_json(tmp_path, BASE))[0].to_dict()
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
    assert load_grid(write_json(tmp_path, grid))[0].model.num_units == 64


def test_slurm_task_selects_one_configuration(tmp_path):
    configs = load_grid(write_json(tmp_path, {**BASE, "batch_size": [8, 16, 32]}))
    assert select_configurations(configs, {}) == list(enumerate(configs))
    assert select_configurations(configs, {"SLURM_ARRAY_TASK_ID": "2"}) == [(2, configs[2])]
    with pytest.raises(DsplError,
                       match=r"SLURM_ARRAY_TASK_ID=3 is outside the grid: it has 3 configuration\(s\), 0 to 2"):
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
        ({"batch_size": [-4]}, "HP: key 'batch_size': value -4 is out of range, expected a whole number from 1 to "
                               "65536"),
        ({"image_width": [0]},
         "HP: key 'image_width': value 0 is out of range, expected a whole number of pixels from 1 to 2048"),
        ({"finetune_layer": [1.5]}, "HP: key 'finetune_layer': value 1.5 is out of range, expected a number in [0, 1]"),
        ({"color_map": ["jet"]},
         "HP: key 'color_map': value \"jet\" is not one of viridis, cividis, inferno, magma, plasma"),
        ({"optimizer": ["adamw"]},
         "HP: key 'optimizer': value \"adamw\" is not one of adam, adadelta, sgd, adagrad, ftrl, nadam, rmsprop"),
        ({"sample_rate": None}, "HP: required key 'sample_rate' is missing"),
        ({"upper_edge_hertz": [9000.0]},
         "HP (configuration 0): key 'upper_edge_hertz': value 9000.0 is above the Nyquist frequency 8000 of "
         "sample_rate 16000"),
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
        load_grid(write_json(tmp_path, [1, 2]))


def test_shipped_configs_are_valid():
    root = ROOT / "configs"
    configs = load_grid(root / "hp_config.json")
    classes = load_class_config(root / "class_config.json")
    assert len(configs) >= 1
    check_class_config(classes, configs[0].prediction_type)


@pytest.mark.parametrize("model", ["densenet121", "mobilenet_v2", "scratch_mobilenet_v2", "squeezenet_v1"])
def test_the_configs_deepspectrumlite_trained_with_are_within_every_limit(model):
    assert load_grid(DSL_MODELS / model / "hp_config.json")


# --- bad values are one line before training starts (`dspl train`) -----------------------------------------------
@pytest.mark.parametrize("key, value, message", [
    ("chunk_size", "NaN", "key 'chunk_size': value NaN is not a finite number"),
    ("learning_rate", "Infinity", "key 'learning_rate': value Infinity is not a finite number"),
    ("chunk_hop_size", "0.00001", "(configuration 0): key 'chunk_hop_size': value 1e-05 is less than one sample at "
                                  "sample_rate 16000"),
    ("stft_window_size", "0.5", "(configuration 0): key 'stft_window_size': value 0.5 is longer than a chunk "
                                "(chunk_size 0.25 s): expected a window that fits into one chunk"),
])
def test_bad_numbers_are_one_line_before_training(example_dir, tmp_path, key, value, message):
    grid = {k: [v] for k, v in tiny_config().to_dict().items()}
    grid.update(chunk_size=[0.25], chunk_hop_size=[0.25], stft_fft_length=[0.5])
    hp_file = tmp_path / "hp.json"
    hp_file.write_text(json.dumps(grid).replace(f'"{key}": [{json.dumps(grid[key][0])}]', f'"{key}": [{value}]'))
    result = run(*train_args(example_dir, tmp_path / "out", hp_file))
    one_error_line(result, f"{hp_file} {message}" if message.startswith("(") else f"{hp_file}: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value", [("tb_run_id", "../../../victim"), ("tb_experiment", ".."),
                                        ("tb_run_id", "a/b"), ("tb_experiment", ""), ("tb_run_id", "."),
                                        ("tb_run_id", "a\u0000b"), ("tb_experiment", "a\\b"),
                                        ("tb_run_id", "é" * 101), ("tb_experiment", "x\ny")])
def test_run_names_that_leave_the_model_dir_are_refused_before_restart_removes_anything(example_dir, tmp_path, key,
                                                                                        value):
    out = tmp_path / "a" / "b" / "out"
    victim = out.parent / "victim_config_0"  # where <-md>/logs/<exp>/../../../victim_config_0 points
    victim.mkdir(parents=True)
    (victim / "precious.txt").write_text("keep me")
    hp_file = grid_file(tmp_path / "hp.json", 1, [0.001])
    grid = json.loads(hp_file.read_text())
    grid[key] = [value]
    hp_file.write_text(json.dumps(grid))
    one_error_line(run(*train_args(example_dir, out, hp_file), "--restart"),
                   f"{hp_file}: key '{key}': value {json.dumps(value)} is not a valid value, expected one folder name: "
                   "not empty, not '.' or '..', no '/' or '\\', no control characters, at most 200 bytes")
    assert (victim / "precious.txt").read_text() == "keep me" and sorted(victim.iterdir()) == [victim / "precious.txt"]
    assert not out.exists()


def test_a_name_of_200_bytes_is_one_folder_name_and_trains_into_the_model_dir():
    config = tiny_config(tb_run_id="é" * 100, tb_experiment="x" * 200)
    assert config.experiment.tb_run_id == "é" * 100


# --- nothing ambiguous: keys given twice ---------------------------------------------------------------------------
def test_a_key_given_twice_in_the_hp_config_is_one_line(example_dir, tmp_path):
    grid = json.dumps({k: [v] for k, v in tiny_config().to_dict().items()})
    hp_file = tmp_path / "hp.json"
    hp_file.write_text(grid[:-1] + ', "dropout": [0.9]}')
    one_error_line(run(*train_args(example_dir, tmp_path / "out", hp_file)),
                   f"{hp_file}: key 'dropout' is given twice, expected each key once")
    assert not (tmp_path / "out").exists()


def test_a_class_config_key_given_twice_is_one_line(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text('{"low": "Low", "high": "High", "low": "Loud"}')
    with pytest.raises(DsplError) as error:
        load_class_config(path)
    assert str(error.value) == f"{path}: key 'low' is given twice, expected each key once"


def test_an_alias_given_with_its_key_is_one_line(example_dir, tmp_path):
    grid = {k: [v] for k, v in tiny_config().to_dict().items()}
    grid["num_unit"] = [16]
    hp_file = write_json(tmp_path, grid)
    one_error_line(run(*train_args(example_dir, tmp_path / "out", hp_file)),
                   f"{hp_file}: key 'num_units' is given twice, as 'num_units' and as its alias 'num_unit': expected "
                   "one of them")
    del grid["num_units"]
    assert load_grid(write_json(tmp_path, grid))[0].model.num_units == 16  # the alias alone is fine


# --- values a dependency would refuse later, sizes that would run for hours ------------------------------------------
@pytest.mark.parametrize("key, value, expected", [
    ("seed", 2**64, "an integer from 0 to 4294967295 (2**32 - 1, numpy's range)"),
    ("seed", -1, "an integer from 0 to 4294967295 (2**32 - 1, numpy's range)"),
    ("image_width", 100000, "a whole number of pixels from 1 to 2048"),
    ("image_height", 0, "a whole number of pixels from 1 to 2048"),
])
def test_values_out_of_a_dependencys_or_a_sane_range_are_one_line(example_dir, tmp_path, key, value, expected):
    grid = {k: [v] for k, v in tiny_config().to_dict().items()}
    grid[key] = [value]
    hp_file = write_json(tmp_path, grid)
    one_error_line(run(*train_args(example_dir, tmp_path / "out", hp_file)),
                   f"{hp_file}: key '{key}': value {value} is out of range, expected {expected}")
    assert tiny_config(**{key: 2**32 - 1 if key == "seed" else 2048})  # the limits themselves are fine


@pytest.mark.parametrize("changes, expected", [
    ({"num_units": [10**10]}, "key 'num_units': value 10000000000 is out of range, expected a whole number from 1 to "
                              "65536"),
    ({"sample_rate": [10**10]}, "key 'sample_rate': value 10000000000 is out of range, expected a whole number of "
                                "hertz from 1 to 768000"),
    ({"chunk_size": [1e9]}, "key 'chunk_size': value 1000000000.0 is out of range, expected a number of seconds up "
                            "to 600 (0 or less: each file whole)"),
    ({"chunk_hop_size": [1e308]}, "key 'chunk_hop_size': value 1e+308 is out of range, expected a number of seconds "
                                  "up to 600"),
    ({"stft_hop_size": [1e308]}, "key 'stft_hop_size': value 1e+308 is out of range, expected a number of seconds > 0 "
                                 "and up to 600"),
    ({"stft_window_size": [0]}, "key 'stft_window_size': value 0.0 is out of range, expected a number of seconds > 0 "
                                "and up to 600"),
    ({"batch_size": [10**30]}, f"key 'batch_size': value {10**30} is out of range, expected a whole number from 1 to "
                               "65536"),
    ({"num_mel_bins": [100000]}, "key 'num_mel_bins': value 100000 is out of range, expected a whole number from 1 to "
                                 "1024"),
    ({"epochs": [10**6]}, "key 'epochs': value 1000000 is out of range, expected a whole number from 0 to 100000"),
    ({"pre_epochs": [-1]}, "key 'pre_epochs': value -1 is out of range, expected a whole number from 0 to 100000"),
    ({"cep_lifter": [10**400]}, f"key 'cep_lifter': value {10**400} is out of range, expected a whole number from 0 "
                                "to 10000"),
    ({"specaug_time_mask_num": [10**9]}, "key 'specaug_time_mask_num': value 1000000000 is out of range, expected a "
                                         "whole number from 0 to 2048"),
    ({"sap_aug_a": [1]}, "key 'sap_aug_a': value 1.0 is out of range, expected a number in (0, 1)"),
    ({"learning_rate": [10**400]}, f"key 'learning_rate': value {10**400} is not a finite number"),
])
def test_sizes_that_would_exhaust_memory_or_never_finish_are_one_line(tmp_path, changes, expected):
    assert error_of(tmp_path, **changes) == f"HP: {expected}"


def test_an_fft_of_more_samples_than_the_limit_is_one_line(tmp_path):
    assert error_of(tmp_path, stft_fft_length=[10.0]) == (
        f"HP (configuration 0): key 'stft_fft_length': value 10.0 gives 160000 samples at sample_rate 16000, expected "
        f"at most {MAX_FFT_SAMPLES} samples per FFT")


def test_every_limit_itself_is_a_valid_value(tmp_path):
    limits = {"num_units": [65536], "sample_rate": [768000], "chunk_size": [600], "chunk_hop_size": [600],
              "stft_window_size": [0.128], "stft_fft_length": [MAX_FFT_SAMPLES / 768000], "batch_size": [65536],
              "num_mel_bins": [1024], "epochs": [100000], "pre_epochs": [100000], "cep_lifter": [10000],
              "specaug_freq_mask_num": [2048], "specaug_time_mask_num": [2048], "sap_aug_a": [0.999]}
    config = load_grid(write_json(tmp_path, {**BASE, **limits}))[0]
    assert config.spec.fft_length == MAX_FFT_SAMPLES and config.spec.chunk_samples == 600 * 768000


@pytest.mark.parametrize("key, value, message", [
    ("stft_hop_size", 1e-9, "value 1e-09 is less than one sample at sample_rate 16000"),
    ("stft_window_size", 1e-9, "value 1e-09 gives fewer than 2 samples per frame at sample_rate 16000"),
    ("chunk_hop_size", 1e-9, "value 1e-09 is less than one sample at sample_rate 16000"),
])
def test_each_sample_count_below_one_names_its_own_key(tmp_path, key, value, message):
    assert error_of(tmp_path, **{key: [value]}) == f"HP (configuration 0): key '{key}': {message}"


# --- JSON that Python's parser would answer with a traceback ---------------------------------------------------------
@pytest.mark.parametrize("text, problem", [
    ("[" + "1" * 5000 + "]", "an integer of 5000 digits, expected at most 4300 (Python's limit)"),
    ("[" * 100000 + "]" * 100000, f"arrays and objects nested 100000 levels deep, expected at most {MAX_JSON_DEPTH}"),
    ('{"a": ' * 1000 + "1" + "}" * 1000, f"arrays and objects nested 1000 levels deep, expected at most "
                                         f"{MAX_JSON_DEPTH}"),
])
@pytest.mark.parametrize("load", [load_grid, load_class_config])
def test_json_python_cannot_parse_is_one_line_naming_the_file(tmp_path, text, problem, load):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(DsplError) as error:
        load(path)
    assert str(error.value) == f"{path}: not valid JSON: {problem}"


def test_json_nested_to_the_limit_parses_and_brackets_in_strings_do_not_count():
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(deepest, "x") is not None
    strings = [["[" * 500 + "\\", '"' + "{" * 500]]  # an escaped backslash ends one, an escaped quote opens one
    assert parse_json(json.dumps(strings), "x") == strings


def test_json_bytes_that_are_no_text_are_one_line():
    with pytest.raises(DsplError) as error:
        parse_json(b'{"a": "\xff"}', "model.h5 (stored configuration)")
    assert str(error.value) == ("model.h5 (stored configuration): not valid JSON: not UTF-8 text (invalid start "
                                "byte)")


# --- a label parser path that is no regular file ---------------------------------------------------------------------
def test_a_label_parser_path_that_is_a_directory_or_device_says_what_it_is(tmp_path):
    (tmp_path / "parsers").mkdir()
    assert error_of(tmp_path, label_parser=["parsers:P"]) == (
        f"HP (configuration 0): label_parser 'parsers:P': {tmp_path / 'parsers'}: is a directory, expected a regular "
        "file (label parser file)")
    assert error_of(tmp_path, label_parser=["/dev/zero:P"]) == (
        "HP (configuration 0): label_parser '/dev/zero:P': /dev/zero: is a device, expected a regular file (label "
        "parser file)")
