"""The search space (dspl.config.space): choices, ranges and constants of an hp config, checked as a grid is, and
each bad space named in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dspl.config import Range, RunConfig, load_space, parse_space
from dspl.data.example import example_hp
from dspl.errors import DsplError


def space(**changes: Any) -> dict[str, Any]:
    """The example configuration as a space of constants, with some keys changed."""
    return {**{key: [value] for key, value in example_hp().items()}, **changes}


def test_lists_are_choices_one_element_lists_constants_and_objects_ranges():
    raw = space(basemodel_name=["test_efficientnet", "mobilenetv3_small_050"],
                learning_rate={"low": 1e-4, "high": 1e-2, "log": True},
                image_width={"low": 32, "high": 64, "step": 16}, num_unit=[16, 32])
    del raw["num_units"]  # given under its alias instead
    parsed = parse_space(raw)
    assert parsed.choices == {"basemodel_name": ("test_efficientnet", "mobilenetv3_small_050"), "num_units": (16, 32)}
    assert parsed.ranges == {"learning_rate": Range(1e-4, 1e-2, log=True),
                             "image_width": Range(32, 64, step=16, integer=True)}
    assert parsed.constants["optimizer"] == "adam" and "learning_rate" not in parsed.constants
    assert parsed.searched == ("basemodel_name", "num_units", "learning_rate", "image_width")


def test_a_trial_configuration_is_a_checked_run_config():
    parsed = parse_space(space(dropout={"low": 0.0, "high": 0.5}, batch_size=[8, 16]))
    config = parsed.configuration({"dropout": 0.25, "batch_size": 16}, "trial 3")
    assert isinstance(config, RunConfig)
    assert (config.model.dropout, config.training.batch_size) == (0.25, 16)
    assert parsed.first().model.dropout == 0.0 and parsed.first().training.batch_size == 8


def test_a_trial_configuration_passes_the_checks_of_the_grid():
    parsed = parse_space(space(num_mel_bins={"low": 8, "high": 64}, num_mfccs=[0, 32]))
    with pytest.raises(DsplError, match=r"^<search space> \(trial 2\): key 'num_mfccs': value 32 exceeds num_mel_bins"):
        parsed.configuration({"num_mel_bins": 16, "num_mfccs": 32}, "trial 2")
    parsed = parse_space(space(stft_fft_length={"low": 0.032, "high": 10.0}))
    with pytest.raises(DsplError) as error:
        parsed.configuration({"stft_fft_length": 9.0}, "trial 4")
    assert str(error.value) == ("<search space> (trial 4): key 'stft_fft_length': value 9.0 gives 144000 samples at "
                                "sample_rate 16000, expected at most 131072 samples per FFT")


def test_the_label_parser_file_is_looked_up_beside_the_space(tmp_path):
    (tmp_path / "parser.py").write_text("class P:\n    pass\n", encoding="utf-8")
    file = tmp_path / "space.json"
    file.write_text(json.dumps(space(label_parser=["parser.py:P"])), encoding="utf-8")
    assert load_space(file).first().label_parser.file.resolve() == (tmp_path / "parser.py").resolve()


@pytest.mark.parametrize("value, contained", [(32, True), (48, True), (64, True), (40, False), (80, False)])
def test_a_range_in_steps_contains_its_steps_only(value, contained):
    assert Range(32, 64, step=16, integer=True).contains(value) is contained


BAD_SPACES = [
    ({}, "expected a JSON object of lists and ranges ({\"low\": a, \"high\": b}), got an empty object"),
    ([1, 2], "expected a JSON object of lists and ranges ({\"low\": a, \"high\": b}), got list"),
    (space(dropout={"low": 0.5, "high": 0.1}), "key 'dropout': range low 0.5 is above high 0.1"),
    (space(dropout={"low": 0.1}), "key 'dropout': a range needs both low and high, got {\"low\": 0.1}"),
    (space(dropout={"low": 0.1, "hihg": 0.5}),
     "key 'dropout': unknown field 'hihg' in a range, expected low, high and optionally log or step"),
    (space(dropout={"low": 0.1, "high": 1.5}), "key 'dropout': value 1.5 is out of range, expected a number in [0, 1)"),
    (space(num_mel_bins={"low": 32, "high": 100000}),
     "key 'num_mel_bins': value 100000 is out of range, expected a whole number from 1 to 1024"),
    (space(sample_rate={"low": 16000, "high": 10**10, "log": True}),
     "key 'sample_rate': value 10000000000 is out of range, expected a whole number of hertz from 1 to 768000"),
    (space(chunk_size={"low": 1.0, "high": 1e9}), "key 'chunk_size': value 1000000000.0 is out of range, expected a "
                                                  "number of seconds up to 600 (0 or less: each file whole)"),
    (space(batch_size=[16, 10**30]),
     f"key 'batch_size': value {10**30} is out of range, expected a whole number from 1 to 65536"),
    (space(dropout={"low": 0.0, "high": 0.5, "log": True}), "key 'dropout': a log range needs low > 0, got 0.0"),
    (space(dropout={"low": 0.1, "high": 0.5, "log": True, "step": 0.1}),
     "key 'dropout': a range is either on a log scale or in steps, not both"),
    (space(dropout={"low": 0.1, "high": 0.5, "step": 0.3}),
     "key 'dropout': range step 0.3 does not divide high - low (0.5 - 0.1)"),
    (space(batch_size={"low": 4, "high": 16, "step": 2.5}), "key 'batch_size': range step 2.5 is not a int > 0"),
    (space(learning_rate={"low": 0.001, "high": 0.01, "step": 1e-300}),
     "key 'learning_rate': range step 1e-300 cuts high - low into more than 1e+09 steps: leave the step out for a "
     "continuous range"),
    (space(batch_size={"low": 4.5, "high": 16}), "key 'batch_size': value 4.5 is not of type int"),
    (space(optimizer={"low": 1, "high": 2}),
     "key 'optimizer': a range needs a numeric key, this one takes str values: give a list of choices"),
    (space(dropout=0.1), "key 'dropout': expected a list of values or a range {\"low\": a, \"high\": b}, got 0.1"),
    (space(dropout=[]), "key 'dropout': the list of values is empty, expected at least one value"),
    (space(dropout=[0.1, 0.1]), "key 'dropout': the choice 0.1 is listed twice"),
    (space(dropuot=[0.1]), "unknown key 'dropuot' (did you mean 'dropout'?)"),
    (space(num_unit={"low": 8, "high": 32}), "key 'num_units' is given twice, as 'num_units' and as its alias "
                                             "'num_unit': expected one of them"),
    (space(tb_run_id=["a", "b"]), "key 'tb_run_id': a search needs one value of this key (the output folders and "
                                  "the devel metric depend on it), got a choice or a range"),
    ({k: v for k, v in space().items() if k != "basemodel_name"}, "required key 'basemodel_name' is missing"),
]


@pytest.mark.parametrize("raw, message", BAD_SPACES)
def test_each_bad_space_is_one_message_naming_the_file_and_key(raw, message):
    with pytest.raises(DsplError) as caught:
        parse_space(raw, "space.json")
    assert str(caught.value) == f"space.json: {message}"


def test_a_malformed_space_file_is_named_with_its_line(tmp_path):
    file = tmp_path / "space.json"
    file.write_text('{"dropout": [0.1,]}', encoding="utf-8")
    with pytest.raises(DsplError, match=r"space.json: malformed JSON at line 1, column 18"):
        load_space(file)


def test_the_plain_data_of_a_space_tells_two_spaces_apart():
    one = parse_space(space(dropout={"low": 0.1, "high": 0.5}))
    assert one.to_json() == parse_space(space(dropout={"low": 0.1, "high": 0.5})).to_json()
    assert one.to_json() != parse_space(space(dropout={"low": 0.1, "high": 0.4})).to_json()
    assert json.loads(json.dumps(one.to_json())) == one.to_json()


def test_the_example_space_file_of_the_readme_parses():
    assert load_space(Path(__file__).resolve().parents[2] / "configs" / "search_space.json").searched
