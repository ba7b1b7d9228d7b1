"""Helpers shared by test modules (import as ``from helpers import ...``; never import one test module from another).

Kept free of fixtures (those live in conftest.py) and light to import: torch, TensorFlow and dspl load lazily.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from unittest import mock

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent  # tests/ (its data/ holds the committed fixtures)
ROOT = TESTS.parent  # the repository: README.md, configs/, notebooks/
TINY = {"basemodel_name": "test_efficientnet", "image_width": 32, "image_height": 32, "num_units": 8}
CLASS_DICT = {"low": "Low tone", "high": "High tone", "noise": "Noise"}


def build_config(values: dict[str, Any]) -> Any:
    """The one way tests build a configuration: checked and defaulted as a grid file's (a RunConfig)."""
    from dspl.config import RunConfig

    return RunConfig.from_dict(values, "test")


def example_config(**overrides: Any) -> Any:
    """The example configuration (categorical, `dspl example-data`'s) with overrides (a RunConfig)."""
    from dspl.data.example import example_hp

    return build_config({**example_hp(), **overrides})


def tiny_config(prediction_type: str = "categorical", **overrides: Any) -> Any:
    """The example configuration with a tiny timm backbone and 32x32 plots (a RunConfig)."""
    from dspl.data.example import example_hp

    return build_config({**example_hp(prediction_type), **TINY, **overrides})


def augment_settings(**overrides: Any) -> Any:
    """Augmentation settings at their defaults, SapAugment at (0.5, 10), CutMix and SpecAugment off, with overrides."""
    from dspl.config import AugmentSettings

    return AugmentSettings(**{"sap_aug_a": 0.5, "sap_aug_s": 10.0, "augment_cutmix": False, "augment_specaug": False,
                              **overrides})


def distinct_images(b: int, h: int = 32, w: int = 32) -> Any:
    """A batch ``[b, 3, h, w]`` whose sample i is filled with i + 1 (all channels): a pasted pixel names its source."""
    import torch

    return (torch.arange(b, dtype=torch.float32) + 1).view(b, 1, 1, 1).expand(b, 3, h, w).clone()


def write_json(folder: Path, content: Any, name: str = "hp.json") -> Path:
    """`content` as the JSON file `folder/name` (a grid, a class config, or something invalid on purpose)."""
    path = folder / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def write_grid(path: Path, config: Any) -> Path:
    """Write one configuration (a RunConfig or a mapping of keys) as a hyper-parameter grid file (JSON of
    one-element lists)."""
    values = config if isinstance(config, dict) else config.to_dict()
    path.write_text(json.dumps({k: [v] for k, v in values.items()}), encoding="utf-8")
    return path


def grid_file(path: Path, epochs: int, learning_rates: list[float]) -> Path:
    """A grid file of tiny_config (batch size 8, ``epochs`` epochs): one configuration per learning rate."""
    grid = {k: [v] for k, v in tiny_config(epochs=epochs, batch_size=8).to_dict().items()}
    grid["learning_rate"] = learning_rates
    path.write_text(json.dumps(grid), encoding="utf-8")
    return path


def model_grid(model_file: Path, path: Path, **changes: Any) -> Path:
    """The model's own configuration written as a grid file, with some keys changed."""
    import dspl

    hp = {**dspl.load_model(model_file).config.to_dict(), **changes}
    path.write_text(json.dumps({key: [value] for key, value in hp.items()}))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- running commands and reading their errors -----------------------------------------------------------------

def run(*args: str) -> Any:
    """`dspl ARGS` in this process (click's CliRunner, the program named dspl); returns click's Result."""
    from click.testing import CliRunner

    from dspl.cli.main import cli

    return CliRunner().invoke(cli, list(args), prog_name="dspl")


def one_error_line(result: Any, message: str) -> None:
    """The README's rule: exit status 1 and exactly one line, `error: <message>`."""
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == f"error: {message}", result.output
    assert "Traceback" not in result.output


def error_message(call: Any, *args: Any) -> str:
    """The message of the DsplError that ``call(*args)`` raises (fails if it raises none)."""
    from dspl.errors import DsplError

    with pytest.raises(DsplError) as error:
        call(*args)
    return str(error.value)


def train_args(example_dir: Path, out: Path, hp_file: Path) -> list[str]:
    """`dspl train` on the example set into ``out`` with the grid ``hp_file``."""
    return ["train", "-d", str(example_dir / "audio"), "-md", str(out), "-hc", str(hp_file),
            "-cc", str(example_dir / "class_config.json"), "-l", str(example_dir / "label.csv")]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes), without dspl's hidden staging folders."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".dspl-") for part in p.relative_to(folder).parts)}


def leftovers(folder: Path) -> list[str]:
    """Temporaries, staging folders and journals under folder."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith(".dspl-") and p.name != ".dspl-predict.lock")


def outside(root: Path, folder: Path) -> dict[str, bytes]:
    """Every file under root that is not inside folder (relative path -> bytes): what a command writing into
    folder must leave as it was."""
    return {name: data for name, data in snapshot(root).items() if not (root / name).is_relative_to(folder)}


def partial_files(folder: Path) -> list[str]:
    """Files under folder that a write left half-done: temporaries (`.tmp`) and empty files."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() and (p.name.endswith(".tmp") or p.stat().st_size == 0))


def without_blocking(fifo: Path, call: Any, *args: Any, limit: float = 60.0) -> Any:
    """``call(*args)``'s result where ``fifo`` is given in place of a file; if it is still running after ``limit``
    seconds (it opened the FIFO and waits for a writer), the FIFO gets a writer to release it and the test fails."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = call(*args)
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        with open(fifo, "wb"):
            pass
        thread.join()
        pytest.fail(f"blocked on the FIFO {fifo}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class RunsCode:
    """A pickle that runs code when loaded without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "the pickle ran"))


# --- dspl in a child process, killed at a chosen point ----------------------------------------------------------

POLL = 0.02  # seconds between looks at the file system while a child process runs
KILL_DEADLINE = 300.0  # seconds a child may take to reach a kill point (a loaded CI machine)


def spawn(*args: str) -> subprocess.Popen:
    """`dspl ARGS` in a child process; its output goes to a temporary file (a full pipe would stall it), read back
    with output_of."""
    output = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "dspl", *args], stdout=output, stderr=subprocess.STDOUT)
    process.output = output
    return process


def output_of(process: subprocess.Popen) -> str:
    """What a spawned process has written so far."""
    process.output.seek(0)
    return process.output.read()


def kill_when(process: subprocess.Popen, appears: Callable[[], bool]) -> None:
    """Poll until ``appears()`` is true, then kill -9 the process; fails if it ends first or takes too long."""
    signal_when(process, appears, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


def signal_when(process: subprocess.Popen, appears: Callable[[], bool], signum: int) -> None:
    """Poll until ``appears()`` is true, then send the process ``signum``; fails if it ends first or takes too
    long."""
    deadline = time.monotonic() + KILL_DEADLINE
    while not appears():
        if process.poll() is not None:
            pytest.fail(f"the process ended (status {process.returncode}) before the kill point:\n"
                        f"{output_of(process)}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the kill point was not reached in time")
        time.sleep(POLL)
    process.send_signal(signum)


# --- DeepSpectrumLite's own Keras models (tests/data/dsl_models, made by tools/dsl_fixtures.py) ---------------

DSL_MODELS = TESTS / "data" / "dsl_models"
DSL_CLASSES = DSL_MODELS / "class_config.json"
DSL_DETERMINISTIC = ("mobilenet_v2", "densenet121", "squeezenet_v1")  # trained from weights, or without BatchNorm


def dsl_configs(name: str) -> list[str]:
    """The fixture's configs as `-hc`/`-cc` arguments."""
    return ["-hc", str(DSL_MODELS / name / "hp_config.json"), "-cc", str(DSL_CLASSES)]


def dsl_given(name: str) -> Any:
    """The fixture's configs as `-hc`/`-cc` give them (GivenConfigs)."""
    from dspl.config import GivenConfigs

    return GivenConfigs.read(DSL_MODELS / name / "hp_config.json", DSL_CLASSES)


def dsl_model_copy(name: str, tmp_path: Path) -> Path:
    """The fixture's model.h5 in a folder `<name>_0` (outputs go beside the model)."""
    import shutil

    folder = tmp_path / f"{name}_0"
    folder.mkdir()
    return Path(shutil.copy(DSL_MODELS / name / "model.h5", folder / "model.h5"))


def read_scores(path: Path) -> tuple[list[tuple[str, float]], np.ndarray, list[str]]:
    """(filename, time) keys, the prob_ columns and the predictions of a chunk predictions CSV."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c.startswith("prob_")]
    keys = [(r["filename"], round(float(r["time"]), 3)) for r in rows]
    return keys, np.array([[float(r[c]) for c in columns] for r in rows]), [r["prediction"] for r in rows]


def untrained_model(config: Any, num_outputs: int) -> Any:
    """The configuration's model with random weights, in eval mode."""
    from dspl.models import create_model

    return create_model(config.model, num_outputs, in_chans=config.spec.input_channels, pretrained=False).eval()


def spread_model_file(path: Path, config: Any, class_dict: dict[str, str], seed: int = 0,
                      gain: float = 40.0) -> Path:
    """An untrained model file whose head is scaled by ``gain`` so that chunks of one file get clearly
    different scores (no training: seconds instead of a minute)."""
    import torch

    from dspl.config import ClassConfig
    from dspl.models.modelfile import save_model_file

    classes = ClassConfig.from_dict(class_dict)
    torch.manual_seed(seed)
    model = untrained_model(config, classes.num_classes)
    with torch.no_grad():
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(gain)
    return save_model_file(path, model, config, classes)


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


# --- the plot parity grid's configurations, signals and tolerances (the README's) ------------------------------

BASE = {
    "label_parser": "../lib/data/parser/ComParEParser.py:ComParEParser", "basemodel_name": "test_efficientnet",
    "tb_experiment": "exp", "tb_run_id": "run", "num_units": 4, "dropout": 0.25, "optimizer": "adadelta",
    "learning_rate": 0.001, "finetune_layer": 0.7, "loss": "categorical_crossentropy", "activation": "arelu",
    "pre_epochs": 1, "batch_size": 1, "sample_rate": 16000, "normalize_audio": True, "chunk_size": 0.25,
    "chunk_hop_size": 0.25, "stft_window_size": 0.025, "stft_hop_size": 0.01, "stft_fft_length": 0.025,
    "mel_scale": True, "lower_edge_hertz": 0.0, "upper_edge_hertz": 8000.0, "num_mel_bins": 40, "num_mfccs": 0,
    "cep_lifter": 0, "db_scale": True, "use_plot_images": True, "color_map": "viridis", "image_width": 48,
    "image_height": 32, "resize_method": "bilinear", "anti_alias": True, "sap_aug_a": 0.5, "sap_aug_s": 10.0,
    "augment_cutmix": False, "augment_specaug": False,
}

RATES = {8000: 4000.0, 16000: 8000.0, 44100: 22050.0}  # sample rate -> upper_edge_hertz (Nyquist)
FLOAT32_FLOOR_DB = 60.0  # below this many dB under a chunk's peak, float32 STFT rounding shows


def parity_config(**overrides: Any) -> Any:
    """One configuration of the parity grid: BASE with overrides (upper_edge_hertz follows sample_rate unless
    given)."""
    return build_config({**BASE, "upper_edge_hertz": RATES[overrides.get("sample_rate", BASE["sample_rate"])],
                         **overrides})


def make_signals(rate: int, num_samples: int) -> np.ndarray:
    """float32 [3, N]: a speech-like voiced sound, noise, and silence with one click."""
    rng = np.random.default_rng(rate)
    t = np.arange(num_samples) / rate
    f0 = 120.0 + 40.0 * np.sin(2 * np.pi * 3.0 * t)               # gliding pitch
    phase = 2 * np.pi * np.cumsum(f0) / rate
    speech = np.zeros(num_samples)
    for h in range(1, int(0.45 * rate / 160.0)):                  # harmonics up to near Nyquist
        freq = h * 140.0
        envelope = sum(a / (1.0 + ((freq - fc) / bw) ** 2) for fc, bw, a in ((500, 120, 1.0), (1500, 200, 0.5),
                                                                               (2500, 300, 0.25)))
        speech += (envelope + 0.01) * np.sin(h * phase)
    speech *= 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2        # syllable-rate loudness
    speech = 0.4 * speech / np.abs(speech).max() + 1e-3 * rng.standard_normal(num_samples)  # with breath noise
    noise = 0.3 * rng.standard_normal(num_samples)
    click = np.zeros(num_samples)
    click[num_samples // 3] = 0.8
    return np.stack([speech, noise, click]).astype(np.float32)


def torch_output(spec: Any, audio: np.ndarray) -> np.ndarray:
    """dspl.features.PlotTransform of a PreprocessingSpec, laid out as TF does: [B, H, W, 3] or
    [B, frames, features, 1]."""
    import torch

    from dspl.features import PlotTransform

    with torch.no_grad():
        out = PlotTransform(spec)(torch.from_numpy(audio)).numpy()
    return out.transpose(0, 2, 3, 1)


def image_stats(a: np.ndarray, b: np.ndarray) -> str:
    """Max, 99.9th percentile and share above 0.5 of |a - b|, for failure messages."""
    d = np.abs(a.astype(np.float64) - b)
    return f"max {d.max():.4g}, 99.9th pct {np.percentile(d, 99.9):.4g}, share > 0.5: {np.mean(d > 0.5):.3%}"


def assert_images_close(a: np.ndarray, b: np.ndarray) -> None:
    """The README's image tolerance on the 0..255 scale."""
    assert a.shape == b.shape
    d = np.abs(a.astype(np.float64) - b)
    assert d.max() <= 2.0 and np.mean(d <= 0.5) >= 0.999, image_stats(a, b)


def assert_features_close(spec: Any, a: np.ndarray, b: np.ndarray) -> None:
    """Raw features within 1e-3 dB (MFCCs: 1e-3 in their own log units).

    Power features are compared in dB (absolute, as dB features are). Bins more than FLOAT32_FLOOR_DB below the
    chunk's peak carry float32 FFT rounding of ~1e-7 of the peak amplitude, i.e. 1e-3 to 5e-3 dB at -60 to -100 dB
    (TF's own FFT vs its DFT-by-matmul differ as much), so they get 0.01 dB.
    """
    assert a.shape == b.shape
    a, b = a.astype(np.float64), b.astype(np.float64)
    if spec.num_mfccs > 0:
        assert np.abs(a - b).max() <= 1e-3, f"max |diff| {np.abs(a - b).max():.4g}"
        return
    if not spec.db_scale:
        a, b = (10 * np.log10(np.maximum(x, 1e-16)) for x in (a, b))
    d = np.abs(a - b)
    near = np.maximum(a, b) >= np.maximum(a, b).max(axis=(1, 2, 3), keepdims=True) - FLOAT32_FLOOR_DB
    assert d[near].max() <= 1e-3, f"max |diff| within {FLOAT32_FLOOR_DB} dB of the peak {d[near].max():.4g} dB"
    assert d.max() <= 0.01, f"max |diff| {d.max():.4g} dB"


# --- a page in headless Chromium --------------------------------------------------------------------------------
# Chromium (Debian's `chromium` package; `.ci/run` installs it where it is missing) is driven over its DevTools pipe
# (`--remote-debugging-pipe`): the pages themselves hold no script.

CHROMIUM_TIMEOUT_S = 90
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1100,1400", "--remote-debugging-pipe"]
IMAGES_LOADED = ("new Promise(done => document.readyState === 'complete' ? done() : addEventListener('load', done))"
                 ".then(() => Array.from(document.images, i => [i.getAttribute('src'), i.complete, i.naturalWidth]))")


class DevTools:
    """A headless Chromium and its DevTools protocol over the pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, profile: Path) -> None:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        assert browser, "Chromium is needed for this test: apt-get install chromium (.ci/run does so in CI)"
        commands_in, self._commands = os.pipe()
        self._replies, replies_out = os.pipe()

        def at_fds_3_and_4() -> None:
            first, second = os.dup(commands_in), os.dup(replies_out)
            os.dup2(first, 3)
            os.dup2(second, 4)

        self.process = subprocess.Popen([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
                                        preexec_fn=at_fds_3_and_4)
        os.close(commands_in)
        os.close(replies_out)
        self._buffer, self._next_id = b"", 0
        self._deadline = time.monotonic() + CHROMIUM_TIMEOUT_S

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            left = self._deadline - time.monotonic()
            ready, _, _ = select.select([self._replies], [], [], max(left, 0))
            assert ready, "Chromium did not answer in time"
            chunk = os.read(self._replies, 1 << 20)
            assert chunk, "Chromium closed its DevTools pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._commands, json.dumps(command).encode() + b"\0")
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                assert "error" not in message, message
                return message["result"]

    def wait_for(self, event: str) -> None:
        while self._message().get("method") != event:
            pass

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def render(page: Path, profile: Path) -> tuple[list[list], bytes]:
    """Open a page in headless Chromium: ([src, complete, naturalWidth] of every <img>, a PNG screenshot)."""
    tools = DevTools(profile)
    try:
        target = next(t for t in tools.send("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = tools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        tools.send("Page.enable", session)
        tools.send("Page.navigate", session, url=page.as_uri())
        tools.wait_for("Page.loadEventFired")
        images = tools.send("Runtime.evaluate", session, expression=IMAGES_LOADED, awaitPromise=True,
                            returnByValue=True)["result"]["value"]
        shot = base64.b64decode(tools.send("Page.captureScreenshot", session, captureBeyondViewport=True)["data"])
        return images, shot
    finally:
        tools.close()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch computes on ``count`` threads in the block, not on the CPUs other processes leave free: a model
    trained in it has the same numbers whatever else runs on the machine (another pytest worker), as `--threads`
    gives a user."""
    from dspl import threads

    with threads.torch_threads(count), mock.patch.object(threads.CpuShare, "adapt", lambda self, torch, policy: None):
        yield


def second_record_data(data: bytes) -> int:
    """An offset in the data of an event file's second record (a scalar; the first holds the file's version): a
    TFRecord is its data's length (8 bytes), a checksum (4), the data and its checksum (4)."""
    return 8 + 4 + struct.unpack("<Q", data[:8])[0] + 4 + 8 + 4 + 2
