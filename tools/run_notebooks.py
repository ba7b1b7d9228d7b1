"""Execute the notebooks and store them with their outputs, so a reader on the web sees plots and tables.

    python tools/run_notebooks.py [NOTEBOOK ...]     (default: every notebooks/*.ipynb)

Each notebook runs top to bottom in a fresh kernel whose working directory is a temporary folder, so the files
it writes (its WORK folder) do not land in the repository. Before storing: PNG outputs are shrunk (at most
MAX_WIDTH pixels wide, a 256-colour palette), stderr streams, rich's empty and warning displays (progress bars,
library warnings) and execution timestamps are dropped, so the stored notebooks stay small and their diffs show
content only. The tests still execute the notebooks afresh; this script only refreshes what is stored.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from PIL import Image

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAX_WIDTH = 900
TIMEOUT_S = 3600


def shrink_png(encoded: str) -> str:
    """A base64 PNG at most MAX_WIDTH wide, with a 256-colour palette (returned unchanged if not smaller)."""
    image = Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.quantize(256).save(buffer, format="PNG", optimize=True)
    smaller = base64.b64encode(buffer.getvalue()).decode("ascii")
    return smaller if len(smaller) < len(encoded) else encoded


def noise(output: nbformat.NotebookNode) -> bool:
    """stderr streams, and rich's empty or warning displays (progress bars, "install ipywidgets")."""
    if output.output_type == "stream":
        return output.name == "stderr"
    text = "".join(output.get("data", {}).get("text/plain", ""))
    return output.output_type == "display_data" and "image/png" not in output.data and (
        not text.strip() or "Warning" in text)


def tidy(notebook: nbformat.NotebookNode) -> None:
    """Shrink images, drop noise (see ``noise``) and timing metadata, in place."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        cell.outputs = [o for o in cell.outputs if not noise(o)]
        for output in cell.outputs:
            data = output.get("data", {})
            if "image/png" in data:
                data["image/png"] = shrink_png(data["image/png"])


def run(path: Path) -> None:
    """Execute one notebook in a temporary working directory and store it with its tidied outputs."""
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="dspl-notebook-") as work:
        NotebookClient(notebook, timeout=TIMEOUT_S, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": work}}).execute()
    tidy(notebook)
    nbformat.write(notebook, path)
    print(f"{path}: {path.stat().st_size / 1e3:.0f} kB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    paths = parser.parse_args(argv).notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
