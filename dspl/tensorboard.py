"""TensorBoard's event files without TensorFlow: writing (training logs) and reading (the report's curves)."""

from __future__ import annotations

import sys
import types


def without_tensorflow() -> None:
    """Let TensorBoard use its TensorFlow stub (its documented `notf` switch) unless TF is loaded already.

    Otherwise the first event file written or read imports all of TensorFlow, which costs seconds and a GB per
    process.
    """
    if "tensorflow" not in sys.modules:
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
