"""The class config (dspl.config.classes): categorical and regression class configs, their checks."""

import pytest
from helpers import write_json

from dspl.config import ClassConfig, check_class_config, load_class_config
from dspl.errors import DsplError


def test_class_config_categorical_and_regression(tmp_path):
    path = write_json(tmp_path, {"dog": "Dog", "seagull": "Seagull"}, "cc.json")
    classes = load_class_config(path)
    assert classes.labels == ("dog", "seagull") and classes.names == ("Dog", "Seagull")
    assert classes.index("seagull") == 1
    with pytest.raises(DsplError,
                       match=r"labels.csv: class label 'cat' is not in the class config \(known: dog, seagull\)"):
        classes.index("cat", "labels.csv")
    check_class_config(classes, "categorical")
    with pytest.raises(DsplError, match="a regression class config has exactly one entry"):
        check_class_config(classes, "regression")
    regression = ClassConfig.from_dict({"a": "Arousal"})
    check_class_config(regression, "regression")
    with pytest.raises(DsplError, match="needs at least two classes"):
        check_class_config(regression, "categorical")


def test_an_empty_class_label_is_one_line(tmp_path):
    path = write_json(tmp_path, {"dog": "Dog", "": "Silence"}, "cc.json")
    with pytest.raises(DsplError) as error:
        load_class_config(path)
    assert str(error.value) == (f"{path}: class label '' is empty, expected a non-empty label as the label files "
                                "write it")
