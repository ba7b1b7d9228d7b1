"""The class config: a JSON object mapping each label (as it appears in label files) to its display name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from dspl.config.grid import read_json
from dspl.errors import DsplError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassConfig:
    """Ordered labels and display names; the order fixes the output index of each class."""

    labels: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def index(self, label: str, source: str = "label file") -> int:
        """The output index of a label, or a DsplError naming the unknown label and the known ones."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise DsplError(
                f"{source}: class label '{label}' is not in the class config (known: {', '.join(self.labels)})"
            ) from None

    def to_dict(self) -> dict[str, str]:
        return dict(zip(self.labels, self.names))

    @classmethod
    def from_dict(cls, mapping: dict[str, str], source: str = "<class config>") -> "ClassConfig":
        if not isinstance(mapping, dict) or not mapping:
            raise DsplError(f"{source}: expected a non-empty JSON object mapping labels to names")
        for label, name in mapping.items():
            if label == "":
                raise DsplError(f"{source}: class label '' is empty, expected a non-empty label as the label files "
                                "write it")
            if not isinstance(name, str):
                raise DsplError(f"{source}: class '{label}': name {name!r} is not a string")
        return cls(tuple(str(k) for k in mapping), tuple(mapping.values()))


def load_class_config(path: str | Path) -> ClassConfig:
    """Read a class config file. For regression it holds one entry naming the target."""
    classes = ClassConfig.from_dict(read_json(path), str(path))
    shared = {name: [label for label, other in zip(classes.labels, classes.names) if other == name]
              for name in classes.names}
    for name, labels in shared.items():
        if len(labels) > 1:
            logger.warning("%s: classes %s share the display name '%s': reports and confusion matrices will not "
                           "tell them apart", path, ", ".join(f"'{label}'" for label in labels), name)
    return classes


def check_class_config(classes: ClassConfig, prediction_type: str, source: str = "<class config>") -> None:
    """A regression model predicts one value: its class config must have exactly one entry."""
    if prediction_type == "regression" and classes.num_classes != 1:
        raise DsplError(
            f"{source}: a regression class config has exactly one entry (the target), found {classes.num_classes}"
        )
    if prediction_type == "categorical" and classes.num_classes < 2:
        raise DsplError(f"{source}: a categorical class config needs at least two classes")
