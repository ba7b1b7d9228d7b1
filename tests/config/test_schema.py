"""The schema of a configuration (dspl.config.schema): which keys make up the preprocessing spec."""

from dspl.config import SCHEMA
from dspl.config.schema import PREPROCESSING_KEYS


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
