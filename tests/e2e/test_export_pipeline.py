"""Export of a trained model to every format: built-in operators only, parity, int8 agreement, end-to-end models.

One export (onnx2tf is slow) is shared by the module: a tiny model (timm test_efficientnet, 32x32 plots)
trained by `dspl train`, fine-tuned a few epochs here so that its decisions are confident, then exported
to ONNX, SavedModel and TFLite fp32/fp16/dynamic/int8 plus end-to-end models, calibrated on the train
partition of an example set and verified on its devel partition. The checks below use the test partition.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import torch_threads

from dspl.export import calibration
from dspl.export.tflite_convert import tflite_predict
from dspl.export.tflite_file import custom_operators, tflite_operators

QUANTIZATIONS = ("fp32", "fp16", "dynamic", "int8")


def _fine_tune(model: torch.nn.Module, hp: dict, classes, data_dir: Path, label_file: Path, epochs: int = 12) -> None:
    """A few epochs of plain supervised training on the train partition, for confident decisions: 12 epochs leave
    no chunk of this set with its two top scores within 0.05, so the 98 % checks measure quantisation, not which
    way a near-tie falls (8 left one devel chunk 0.01 from a tie, and dynamic-range quantisation decided it)."""
    from dspl.data.datamodule import AudioDataModule
    from dspl.features import PlotTransform

    torch.manual_seed(0)
    module = AudioDataModule(data_dir, label_file, hp, classes)
    module.setup("fit")
    transform = PlotTransform(hp.spec)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    with torch_threads(1):  # the same model however busy the machine is: the agreement checks allow no flip
        for _ in range(epochs):
            for batch in module.train_dataloader():
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model.logits(transform(batch["audio"])), batch["target"])
                loss.backward()
                optimiser.step()
    model.eval()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An example set with 12 training and 4 devel/test files per class."""
    from dspl.data.example import write_example_data

    return write_example_data(tmp_path_factory.mktemp("export_example"), files_per_class=12, seed=1)


@pytest.fixture(scope="module")
def exported(trained_model: Path, example: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """model.h5 (fine-tuned) and everything `export` wrote for it."""
    from dspl.export.exporter import ExportOptions
    from dspl.export.inputs import InputSources
    from dspl.loading import load_model_file
    from dspl.models.modelfile import save_model_file
    from dspl.workflows.export import export_model

    loaded = load_model_file(trained_model)
    _fine_tune(loaded.model, loaded.config, loaded.classes, example / "audio", example / "label.csv")
    work = tmp_path_factory.mktemp("export")
    model_file = save_model_file(work / "model.h5", loaded.model, loaded.config, loaded.classes)
    options = ExportOptions(formats=("onnx", "saved_model", "tflite"), quantize=QUANTIZATIONS, end_to_end=True,
                            inputs=InputSources(data_dir=example / "audio", label_file=example / "label.csv"))
    written = export_model(model_file, work / "out", options).files
    return {"model_file": model_file, "loaded": load_model_file(model_file), "written": written}


@pytest.fixture(scope="module")
def held_out(exported: dict, example: Path) -> dict:
    """Chunks of the test partition, their torch plots and the PyTorch scores."""
    loaded = exported["loaded"]
    files = calibration.partition_files(loaded.config, loaded.classes, example / "audio", example / "label.csv", "test")
    chunks = calibration.sample_chunks(files, loaded.config.spec, max_chunks=1000)
    plots = calibration.make_plots(loaded.config.spec, chunks)
    with torch.no_grad():
        scores = loaded.model(torch.from_numpy(plots)).numpy()
    return {"files": files, "chunks": np.stack([chunk.numpy() for chunk in chunks]), "plots": plots, "scores": scores}


def test_every_format_is_written(exported: dict) -> None:
    written = exported["written"]
    expected = {"onnx", "saved_model", "report"} | {f"tflite_{q}" for q in QUANTIZATIONS} \
        | {f"end_to_end_{q}" for q in QUANTIZATIONS}
    assert set(written) == expected
    assert all(Path(p).exists() for p in written.values())
    report = json.loads(Path(written["report"]).read_text())
    assert report["steps"]["onnx"]["check"] <= 1e-4
    assert report["steps"]["saved_model"]["check"] <= 1e-4
    assert report["steps"]["tflite_fp32"]["check"] <= 1e-4


@pytest.mark.parametrize("name", [f"{kind}_{q}" for kind in ("tflite", "end_to_end") for q in QUANTIZATIONS])
def test_only_builtin_operators(exported: dict, name: str) -> None:
    path = exported["written"][name]
    operators = tflite_operators(path)
    assert operators and custom_operators(path) == []
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in operators)


def test_image_model_takes_nhwc_plots(exported: dict, held_out: dict) -> None:
    """The TFLite image model takes [1, H, W, 3] on 0..255 as `dspl plot --format npy` writes it."""
    from dspl.export.tflite_convert import make_interpreter

    interpreter = make_interpreter(exported["written"]["tflite_fp32"])
    (source,) = interpreter.get_input_details()
    hp = exported["loaded"].config.spec
    assert list(source["shape"]) == [1, hp.image_height, hp.image_width, 3]
    assert source["dtype"] == np.float32


def test_fp32_tflite_matches_pytorch_on_real_plots(exported: dict, held_out: dict) -> None:
    scores = tflite_predict(exported["written"]["tflite_fp32"], calibration.to_nhwc(held_out["plots"]))
    assert np.max(np.abs(scores - held_out["scores"])) <= 1e-4


def test_onnx_and_saved_model_match_pytorch(exported: dict, held_out: dict) -> None:
    from dspl.export.onnx_export import onnx_predict
    from dspl.export.tf_convert import saved_model_predict

    onnx_scores = onnx_predict(exported["written"]["onnx"], held_out["plots"][:8])
    tf_scores = saved_model_predict(exported["written"]["saved_model"], calibration.to_nhwc(held_out["plots"][:8]))
    assert np.max(np.abs(onnx_scores - held_out["scores"][:8])) <= 1e-4
    assert np.max(np.abs(tf_scores - held_out["scores"][:8])) <= 1e-4


def test_model_is_trained_enough_for_a_meaningful_agreement(held_out: dict) -> None:
    """The agreement test below only means something if the model separates the classes with margin."""
    scores = held_out["scores"]
    assert len(np.unique(scores.argmax(1))) == 3
    assert np.median(scores.max(1)) > 0.6


@pytest.mark.parametrize("q", ["int8", "dynamic", "fp16"])
def test_quantised_top1_agreement_on_held_out_chunks(exported: dict, held_out: dict, q: str) -> None:
    scores = tflite_predict(exported["written"][f"tflite_{q}"], calibration.to_nhwc(held_out["plots"]))
    agreement = np.mean(scores.argmax(1) == held_out["scores"].argmax(1))
    assert agreement >= 0.98, f"{q}: {agreement:.3f} on {len(scores)} chunks"


def test_int8_model_with_integer_input_and_output(exported: dict, held_out: dict, example: Path) -> None:
    from dspl.export.tflite_convert import convert_saved_model, make_interpreter

    loaded = exported["loaded"]
    files = calibration.partition_files(loaded.config, loaded.classes, example / "audio", example / "label.csv",
                                        "train")
    spec = loaded.config.spec
    calib = calibration.to_nhwc(calibration.make_plots(spec, calibration.sample_chunks(files, spec, 32)))
    model = convert_saved_model(exported["written"]["saved_model"], "int8", calib, int8_io=True)
    interpreter = make_interpreter(model)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    scores = tflite_predict(model, calibration.to_nhwc(held_out["plots"]))
    assert np.mean(scores.argmax(1) == held_out["scores"].argmax(1)) >= 0.98


@pytest.mark.parametrize("q", QUANTIZATIONS)
def test_end_to_end_model_classifies_files_as_pytorch(exported: dict, held_out: dict, q: str) -> None:
    from dspl.data.audio import load_audio
    from dspl.data.chunking import split_into_chunks

    loaded = exported["loaded"]
    path = exported["written"][f"end_to_end_{q}"]
    chunk_scores = tflite_predict(path, held_out["chunks"])
    assert np.mean(chunk_scores.argmax(1) == held_out["scores"].argmax(1)) >= 0.98
    if q == "fp32":
        assert np.max(np.abs(chunk_scores - held_out["scores"])) <= 1e-2  # plot parity tolerance, not 1e-4
    for file in held_out["files"]:
        chunks = split_into_chunks(load_audio(file, loaded.config.spec.sample_rate), loaded.config.spec)
        with torch.no_grad():
            expected = loaded.model(torch.from_numpy(calibration.make_plots(loaded.config.spec, chunks))).numpy()
        assert tflite_predict(path, chunks.numpy()).mean(0).argmax() == expected.mean(0).argmax(), file.name


def test_end_to_end_model_takes_one_raw_chunk(exported: dict) -> None:
    from dspl.export.tflite_convert import make_interpreter

    interpreter = make_interpreter(exported["written"]["end_to_end_int8"])
    (source,), (target,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(source["shape"]) == [1, exported["loaded"].config.spec.chunk_samples]
    assert source["dtype"] == np.float32 and target["dtype"] == np.float32
    assert list(target["shape"]) == [1, 3]


def test_metadata_carries_labels_sample_rate_and_preprocessing(exported: dict) -> None:
    from dspl.export.metadata import LABELS_FILE, PREPROCESSING_FILE, associated_files

    loaded = exported["loaded"]
    files = associated_files(exported["written"]["end_to_end_fp32"])
    assert files[LABELS_FILE].decode().splitlines() == list(loaded.classes.labels)
    preprocessing = json.loads(files[PREPROCESSING_FILE])
    assert preprocessing["sample_rate"] == loaded.config.spec.sample_rate
    assert preprocessing["stft_window_size"] == loaded.config.to_dict()["stft_window_size"]
    assert preprocessing["labels"] == list(loaded.classes.labels)


def test_metadata_flatbuffer_reads_back_with_the_published_schema(exported: dict) -> None:
    schema = importlib.import_module("mediapipe.tasks.metadata.metadata_schema_py_generated")
    from dspl.export import tflite_file

    data = Path(exported["written"]["end_to_end_int8"]).read_bytes()
    model = tflite_file.schema().Model.GetRootAsModel(data, 0)
    entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    buffer = model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()
    metadata = schema.ModelMetadata.GetRootAsModelMetadata(buffer, 0)
    subgraph = metadata.SubgraphMetadata(0)
    content = subgraph.InputTensorMetadata(0).Content()
    assert content.ContentPropertiesType() == schema.ContentProperties.AudioProperties
    audio = schema.AudioProperties()
    audio.Init(content.ContentProperties().Bytes, content.ContentProperties().Pos)
    assert (audio.SampleRate(), audio.Channels()) == (exported["loaded"].config.spec.sample_rate, 1)
    labels = subgraph.OutputTensorMetadata(0).AssociatedFiles(0)
    assert (labels.Name().decode(), labels.Type()) == ("labels.txt", schema.AssociatedFileType.TENSOR_AXIS_LABELS)


@pytest.mark.parametrize("q", ["fp32", "int8"])
def test_mediapipe_audio_classifier_runs_the_end_to_end_model(exported: dict, held_out: dict, q: str) -> None:
    """A standard TFLite audio client reads the metadata (sample rate, labels) and agrees with the interpreter."""
    mp_audio = importlib.import_module("mediapipe.tasks.python.audio")
    from mediapipe.tasks.python.components.containers.audio_data import AudioData
    from mediapipe.tasks.python.core.base_options import BaseOptions

    loaded = exported["loaded"]
    path = exported["written"][f"end_to_end_{q}"]
    options = mp_audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                              running_mode=mp_audio.RunningMode.AUDIO_CLIPS, max_results=3)
    chunks = held_out["chunks"][:4]
    expected = tflite_predict(path, chunks)
    with mp_audio.AudioClassifier.create_from_options(options) as classifier:
        for chunk, scores in zip(chunks, expected):
            (result, *_) = classifier.classify(AudioData.create_from_array(chunk, loaded.config.spec.sample_rate))
            best = result.classifications[0].categories[0]
            assert best.category_name == loaded.classes.labels[int(scores.argmax())]
            assert best.score == pytest.approx(float(scores.max()), abs=1e-5)
