"""End-to-end runs of the commands (the README in order, the notebooks, DeepSpectrumLite's command sequence, kill -9
crash safety, the big export pipelines): every test under tests/e2e/ is marked `slow`, so `pytest -m "not slow"`
leaves them out."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)
