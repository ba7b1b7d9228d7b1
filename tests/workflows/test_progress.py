"""The status line of long commands made of steps (export, convert): shown on a terminal only, and not twice."""

from __future__ import annotations

import logging

import pytest

from dspl.workflows.progress import step_status


def test_steps_show_on_a_terminal_only(monkeypatch, capsys):
    with step_status("export") as on_step:
        on_step("step 1: PyTorch -> ONNX")
    assert capsys.readouterr().err == ""  # captured: not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich takes the stream for a terminal
    with step_status("export") as on_step:
        on_step("step 1: PyTorch -> ONNX [x]")
    assert "export: step 1: PyTorch -> ONNX [x]" in capsys.readouterr().err  # brackets are text, not markup


@pytest.mark.parametrize("level, shown", [(logging.WARNING, True), (logging.INFO, False)])
def test_with_v_the_log_tells_the_steps_instead(monkeypatch, capsys, level, shown):
    monkeypatch.setenv("FORCE_COLOR", "1")
    logger = logging.getLogger("dspl")
    before = logger.level
    logger.setLevel(level)
    try:
        with step_status("convert") as on_step:
            on_step("step 2: ONNX -> TensorFlow SavedModel (onnx2tf)")
    finally:
        logger.setLevel(before)
    assert ("convert: step 2" in capsys.readouterr().err) == shown
