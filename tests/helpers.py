"""Helpers shared by test modules (import as ``from helpers import ...``; never import one test module from another).

Kept free of fixtures (those live in conftest.py) and light to import: torch and dspl load lazily.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from pathlib import Path
from typing import Any

TINY = {"basemodel_name": "test_efficientnet", "image_width": 32, "image_height": 32, "num_units": 8}
CLASS_DICT = {"low": "Low tone", "high": "High tone", "noise": "Noise"}


def tiny_hp(prediction_type: str = "categorical", **overrides: Any) -> dict[str, Any]:
    """A validated example configuration with a tiny timm backbone and 32x32 plots."""
    from dspl.config import expand_grid, parse_grid
    from dspl.data.example import example_hp

    raw = {**example_hp(prediction_type), **TINY, **overrides}
    return expand_grid(parse_grid({k: [v] for k, v in raw.items()}))[0]


def write_grid(path: Path, hp: dict[str, Any]) -> Path:
    """Write one configuration as a hyper-parameter grid file (JSON of one-element lists)."""
    path.write_text(json.dumps({k: [v] for k, v in hp.items()}), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def spread_model_file(path: Path, hp: dict[str, Any], class_dict: dict[str, str], seed: int = 0,
                      gain: float = 40.0) -> Path:
    """An untrained model file whose head is scaled by ``gain`` so that chunks of one file get clearly
    different scores (no training: seconds instead of a minute)."""
    import torch

    from dspl.config import ClassConfig
    from dspl.models import create_model
    from dspl.models.modelfile import save_model_file

    classes = ClassConfig.from_dict(class_dict)
    torch.manual_seed(seed)
    model = create_model(hp, classes.num_classes, pretrained=False).eval()
    with torch.no_grad():
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(gain)
    return save_model_file(path, model, hp, classes)


# --- sockets blocked in child processes too -------------------------------------------------------------------

GUARD_ENV = "DSPL_TEST_NETWORK_LOG"

SITECUSTOMIZE = '''\
"""Written by the tests: block the network in every Python process started with this folder on PYTHONPATH."""
import os
import socket

_LOG = os.environ.get("{env}")


def _refuse(*args, **kwargs):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write("%d %r\\n" % (os.getpid(), args[1:] if args and isinstance(args[0], socket.socket) else args))
    raise OSError("network access is blocked in this test (child process)")


for _name in ("connect", "connect_ex", "sendto"):
    setattr(socket.socket, _name, _refuse)
for _name in ("create_connection", "getaddrinfo", "gethostbyname"):
    setattr(socket, _name, _refuse)
'''.format(env=GUARD_ENV)


def install_child_network_guard(folder: Path, monkeypatch: Any) -> Path:
    """Make every Python child process (spawned with the inherited environment) block its sockets.

    Writes ``sitecustomize.py`` to ``folder``, puts ``folder`` first on PYTHONPATH and returns the log file
    where the children record each attempt (``pid args`` per line). The venv has no sitecustomize of its own.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    log = folder / "network_attempts.log"
    previous = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", str(folder) + (os.pathsep + previous if previous else ""))
    monkeypatch.setenv(GUARD_ENV, str(log))
    return log


def child_tries_to_connect() -> tuple[int, str]:
    """Run in a child: try a connection; returns (pid, the error it got)."""
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError as exc:
        return os.getpid(), str(exc)
    return os.getpid(), "connected"
