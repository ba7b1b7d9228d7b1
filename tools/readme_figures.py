"""Refresh the README's pictures from a folder where the README's commands were run, so they show what the
commands make.

    python tools/readme_figures.py FOLDER

FOLDER is where the README was followed in order (its `example/`, `explained/`). Writes
docs/explain_example.png (the summary `dspl explain` wrote for the README's file) and docs/report.png (the
example model's report page as headless Chromium shows it at WIDTH pixels, its empty bottom trimmed).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

DOCS = Path(__file__).resolve().parents[1] / "docs"
EXPLAINED = Path("explained") / "test_003_summary.png"
REPORT = Path("example") / "output" / "models" / "example" / "run_config_0" / "report" / "index.html"
WIDTH = 800
TALLEST = 6000  # the window's height; the page's empty part below its content is cut off
MARGIN = 16


def screenshot(page: Path, destination: Path) -> None:
    """The page as Chromium renders it at WIDTH pixels, trimmed below its last non-white row."""
    with tempfile.TemporaryDirectory() as work:
        shot = Path(work) / "page.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WIDTH},{TALLEST}", f"--screenshot={shot}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        image = Image.open(shot).convert("RGB")
    content = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    bottom = min(image.height, (content[3] if content else image.height) + MARGIN)
    image.crop((0, 0, image.width, bottom)).quantize(256).save(destination, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the README's commands were run")
    folder = parser.parse_args().folder
    shutil.copyfile(folder / EXPLAINED, DOCS / "explain_example.png")
    screenshot(folder / REPORT, DOCS / "report.png")
    print(f"wrote {DOCS / 'explain_example.png'} and {DOCS / 'report.png'}")


if __name__ == "__main__":
    main()
