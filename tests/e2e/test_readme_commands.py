"""The README runs as written: the main command's training part, then every command block, in order.

A newcomer copies the quick start and then each block of the README into a shell at the clone's top; this test
does the same in a temporary folder with the venv's `dspl` on the PATH (the install steps are what CI itself
just ran). Python blocks run with this interpreter.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT

README = ROOT / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# CI's own command (this test is part of it), and the CPU-only install (its index is out of reach of CI)
SKIPPED_MARKERS = ("<!-- test-command -->", "<!-- cpu-install -->")


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced bash/python block in order; the main command without its install steps."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[:match.start()].rstrip().splitlines()[-1]
        language, code = match.group(1), match.group(2)
        if before in SKIPPED_MARKERS:
            continue
        if before == "<!-- main-command -->":
            steps = [step.strip() for step in code.strip().split("&&")]
            code = " && ".join(step.removeprefix(".venv/bin/") for step in steps
                               if not step.startswith(("python3 -m venv", ".venv/bin/pip")))
        blocks.append((language, code))
    return blocks


def test_readme_has_the_blocks_a_newcomer_runs():
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    assert blocks[0] == ("bash", "dspl example-data -o example && dspl train -d example/audio -md example/output "
                                 "-hc example/hp_config.json -cc example/class_config.json -l example/label.csv")
    assert len(blocks) >= 3 and {language for language, _ in blocks} == {"bash", "python"}


def test_every_readme_command_runs_in_order(tmp_path):
    """In a folder laid out like the clone's top: the README copies DeepSpectrumLite's fixture models from tests/.
    At the end the example model's report shows everything the README made: its evaluation and its exports."""
    fixtures = Path("tests") / "data" / "dsl_models"
    shutil.copytree(README.parent / fixtures, tmp_path / fixtures,
                    ignore=shutil.ignore_patterns("densenet121", "*mobilenet_v2"))
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for language, code in readme_blocks(README.read_text(encoding="utf-8")):
        command = ["bash", "-e", "-o", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, \
            f"{code}\n--- exit {result.returncode}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    page = tmp_path / "example" / "output" / "models" / "example" / "run_config_0" / "report" / "index.html"
    report = page.read_text(encoding="utf-8")
    assert "No evaluation files" not in report and "No export_report.json" not in report
    assert "devel (chunks): UAR" in report and "test (files, majority vote): UAR" in report
    for exported in ("model_fp32.tflite", "model_int8.tflite", "model_end_to_end_int8.tflite"):
        assert f"<td>{exported}</td>" in report, exported
    assert (tmp_path / "explained" / "test_003_summary.png").is_file()
