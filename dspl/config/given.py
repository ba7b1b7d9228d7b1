"""The hp and class config files a user gives beside a model file (`-hc`, `-cc`), read once at the command's edge.

A dspl model file holds its own configs: given ones are checked against them (a grid matches when one of its
configurations preprocesses audio as the model does, so training-only keys may differ). A DeepSpectrumLite Keras
model holds none and takes its configs from here (dspl.legacy). The label parser of a given hp config is the one
`devel-test` and `report` may run; a model file's own is never imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dspl.config.classes import ClassConfig, load_class_config
from dspl.config.grid import load_grid
from dspl.config.labels import LabelParserRef
from dspl.config.run import RunConfig
from dspl.config.schema import PREPROCESSING_KEYS
from dspl.errors import DsplError

# Keys that change what the model computes from audio; training-only keys may differ freely.
MODEL_KEYS = ("prediction_type", "basemodel_name", *PREPROCESSING_KEYS)


@dataclass(frozen=True)
class GivenConfigs:
    """The configurations of a given hp config file (``hp_path``) and a given class config (``class_path``), if any."""

    hp_path: Path | None = None
    grid: tuple[RunConfig, ...] = ()
    class_path: Path | None = None
    classes: ClassConfig | None = None

    @classmethod
    def read(cls, hp_config: str | Path | None = None, class_config: str | Path | None = None) -> "GivenConfigs":
        """Read whichever of the two files are given (None: not given)."""
        hp_path = None if hp_config is None else Path(hp_config)
        class_path = None if class_config is None else Path(class_config)
        return cls(hp_path, tuple(load_grid(hp_path)) if hp_path else (), class_path,
                   load_class_config(class_path) if class_path else None)

    def check_against(self, config: RunConfig, classes: ClassConfig, model_file: str | Path) -> None:
        """A DsplError unless the given files fit a model's own configs (see the module docstring)."""
        if self.hp_path is not None:
            stored = config.to_dict()
            differences = [([k for k in MODEL_KEYS if given[k] != stored[k]], given)
                           for given in (c.to_dict() for c in self.grid)]
            diff, closest = min(differences, key=lambda pair: len(pair[0]))
            if diff:
                key = diff[0]
                raise DsplError(f"{self.hp_path}: no configuration matches the model {model_file}: key '{key}' is "
                                f"{closest[key]!r} in the config but {stored[key]!r} in the model (omit -hc to use "
                                "the model's own)")
        if self.classes is not None and self.classes.labels != classes.labels:
            raise DsplError(f"{self.class_path}: classes {list(self.classes.labels)} differ from the model's "
                            f"{list(classes.labels)} ({model_file}); omit -cc to use the model's own")

    def label_parser(self, config: RunConfig) -> LabelParserRef:
        """The parser to read labels with for a model whose configuration is ``config``: the given hp config's
        (the user's own), else the model's own (one a model file names is never imported)."""
        return self.grid[0].label_parser if self.grid else config.label_parser
