"""DeepSpectrumLite's side of the benches: its own code, run by its own Python, timed on request.

DeepSpectrumLite 1.0.2 runs on Python 3.8 with TensorFlow 2.5 and is GPL-licensed, so dspl never imports it.
A bench passes ``--dsl-python PATH`` (the python of a venv with ``deepspectrumlite==1.0.2`` and
``protobuf<3.20``; the benches never install it); ``DslProcess`` writes the small driver below to a temporary
directory, starts it with that python and talks to it in JSON lines, so one long-lived process answers many
interleaved measurements without paying TensorFlow's start-up each time. The driver only calls
DeepSpectrumLite's public API (``DataPipeline``, ``TransferBaseModel``, the ``create-preprocessor`` command)
and Keras/TFLite, as its own ``train``/``convert`` commands do; it contains none of its code.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dspl.config import RunConfig

DRIVER = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from deepspectrumlite import DataPipeline, HyperParameterList, TransferBaseModel

STATE = {}
REPLY = "@dsl-reply@ "  # DeepSpectrumLite prints to stdout too: replies are the lines with this prefix


def hparams_of(path):
    """DeepSpectrumLite's own hparams dict of the grid file's first configuration."""
    return HyperParameterList(config_file_name=path).get_values(iteration_no=0)


def plots(req):
    """Chunks/s of DataPipeline.generate_spectrogram on one batch, mapped over a tf.data dataset as its
    pipeline maps it (graph mode), timed for at least req['seconds'] after two warm-up batches."""
    hparams = hparams_of(req["hp_config"])
    pipeline = DataPipeline(name="bench", data_classes={"a": "A"}, hparams=hparams, run_id=0)
    audio = np.load(req["audio"])
    labels = tf.zeros((audio.shape[0], 1))
    batches = iter(tf.data.Dataset.from_tensors((audio, labels)).repeat().map(pipeline.generate_spectrogram))
    next(batches)[0].numpy(); next(batches)[0].numpy()
    runs, start = 0, time.perf_counter()
    while True:
        next(batches)[0].numpy()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= req["seconds"] and runs >= 3:
            return {"chunks_per_s": runs * audio.shape[0] / elapsed}


class EpochTimer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.cpu_start, self.batches = time.perf_counter(), time.process_time(), 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start


def train_setup(req):
    """The training pipeline and model exactly as its `train` command builds them (train partition,
    up-sampled, cached in memory; seeds 0), without TensorBoard callbacks and devel evaluation."""
    from deepspectrumlite.lib.data.parser.ComParEParser import ComParEParser

    hp_list = HyperParameterList(config_file_name=req["hp_config"])
    hparams = hp_list.get_values(iteration_no=0)
    classes = json.load(open(req["class_config"]))
    train_data, _, _ = ComParEParser(file_path=req["label_file"]).parse_labels()
    np.random.seed(0)
    tf.compat.v1.set_random_seed(0)
    pipeline = DataPipeline(name="train_data_set", data_classes=classes, enable_gpu=True, verbose=False,
                            enable_augmentation=False, hparams=hparams, run_id=0)
    pipeline.set_data(train_data)
    pipeline.set_filename_prepend(prepend_filename_str=os.path.join(req["data_dir"], ""))
    pipeline.preprocess()
    pipeline.up_sample()
    model = TransferBaseModel(hp_list, pipeline.get_model_input_shape(), run_dir=req["run_dir"],
                              data_classes=classes, use_ram=True, run_id=0, verbose=0)
    model.create_model()
    STATE.update(dataset=pipeline.pipeline(cache=True), model=model.get_model(), epoch=0,
                 batch_size=hparams["batch_size"], pipeline=pipeline)
    return {"train_chunks": int(len(pipeline.filenames))}


def train_epoch(req):
    """One more epoch of its Keras fit (AugmentableModel.train_step: SapAugment, CutMix, SpecAugment)."""
    timer = EpochTimer()
    STATE["model"].fit(x=STATE["dataset"], epochs=STATE["epoch"] + 1, initial_epoch=STATE["epoch"],
                       shuffle=True, callbacks=[timer], verbose=0)
    STATE["epoch"] += 1
    samples = timer.batches * STATE["batch_size"]
    return {"samples": samples, "seconds": timer.seconds, "samples_per_s": samples / timer.seconds,
            "cpu_ms_per_sample": 1000 * timer.cpu_seconds / samples}


def convert(req):
    """Its Keras model for req['backbone'] with random weights, in inference mode, converted as its `convert`
    command converts (TFLiteConverter.from_keras_model, SELECT_TF_OPS, new converter), and its
    `create-preprocessor` output for the same configuration.

    Its `convert` fails on from-scratch models (BatchNorm AssignNewValue: TransferBaseModel calls the backbone
    with training=True when weights is ''), so the backbone is built with weights=None but called as for
    pretrained weights (training=False): the Keras application constructor is wrapped to drop the weights name.
    """
    from deepspectrumlite.cli.create_preprocessor import create_preprocessor

    hp_list = HyperParameterList(config_file_name=req["hp_config"])
    hparams = hp_list.get_values(iteration_no=0)
    classes = json.load(open(req["class_config"]))
    pipeline = DataPipeline(name="convert", data_classes=classes, hparams=hparams, run_id=0)
    model = TransferBaseModel(hp_list, pipeline.get_model_input_shape(), run_dir=req["run_dir"],
                              data_classes=classes, use_ram=True, run_id=0, verbose=0)
    module_name, class_name = req["keras_application"].rsplit(".", 1)
    module = getattr(tf.keras.applications, module_name)
    original = getattr(module, class_name)
    setattr(module, class_name, lambda weights=None, **kwargs: original(weights=None, **kwargs))
    try:
        model.hy_params["weights"] = "random (inference mode)"
        model.create_model()
    finally:
        setattr(module, class_name, original)
    converter = tf.lite.TFLiteConverter.from_keras_model(model.get_model())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.experimental_new_converter = True
    open(req["model_out"], "wb").write(converter.convert())
    create_preprocessor.callback(hyper_config=req["hp_config"], destination=req["preprocessor_out"])
    return {"model": req["model_out"], "preprocessor": req["preprocessor_out"]}


COMMANDS = {"plots": plots, "train_setup": train_setup, "train_epoch": train_epoch, "convert": convert}
for line in sys.stdin:
    request = json.loads(line)
    try:
        reply = COMMANDS[request["cmd"]](request)
    except Exception as exc:  # the bench prints it and stops
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    print(REPLY + json.dumps(reply), flush=True)
'''


REPLY = "@dsl-reply@ "


class DslError(RuntimeError):
    """DeepSpectrumLite's side failed (the message carries its error and the tail of its log)."""


class DslProcess:
    """A DeepSpectrumLite driver process; ``request`` sends one command and returns its JSON reply."""

    def __init__(self, python: Path) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="dspl-bench-dsl-"))
        script = self.work / "dsl_driver.py"
        script.write_text(DRIVER, encoding="utf-8")
        self._log = (self.work / "dsl.log").open("w+", encoding="utf-8")
        self._process = subprocess.Popen([str(python), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._log, text=True, cwd=self.work)

    def write_hp(self, values: dict[str, Any], name: str = "hp_config.json") -> Path:
        """Write ``values`` (one value per key, see dsl_hp) as DeepSpectrumLite's grid file in the work dir;
        returns its path."""
        path = self.work / name
        path.write_text(json.dumps({key: [value] for key, value in values.items()}), encoding="utf-8")
        return path

    def request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send ``cmd`` with ``fields``; raise DslError with its log's tail if it fails."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"cmd": cmd, **fields}, default=str) + "\n")
        self._process.stdin.flush()
        reply = {"error": "the DeepSpectrumLite process ended"}
        for line in self._process.stdout:
            if line.startswith(REPLY):
                reply = json.loads(line[len(REPLY):])
                break
            self._log.write(line)
        if "error" in reply:
            self._log.flush()
            self._log.seek(0)
            tail = "".join(self._log.readlines()[-15:])
            raise DslError(f"DeepSpectrumLite {cmd}: {reply['error']}\n{tail}")
        return reply

    def close(self) -> None:
        """End the process and remove the work dir."""
        import shutil

        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=60)
        self._log.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "DslProcess":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def dsl_hp(config: "RunConfig") -> dict[str, Any]:
    """dspl's configuration as DeepSpectrumLite reads it (its key/value mapping): its README's label parser path,
    and None-valued keys (which its grid file cannot hold) dropped."""
    return {**{k: v for k, v in config.to_dict().items() if v is not None},
            "label_parser": "../lib/data/parser/ComParEParser.py:ComParEParser"}
