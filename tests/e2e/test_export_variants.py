"""Export of the model variants the main pipeline test does not cover: regression, raw features, top_db.

Untrained tiny models (random weights are enough for float parity): each is exported to fp32 image and
end-to-end TFLite models without calibration data, and both must reproduce PyTorch on real chunks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CLASS_DICT, tiny_config

from dspl.config import ClassConfig
from dspl.data.example import REGRESSION_CLASSES, write_example_data
from dspl.export.exporter import ExportOptions
from dspl.export.inputs import InputSources
from dspl.export.tflite_convert import tflite_predict
from dspl.features import PlotTransform
from dspl.models import create_model
from dspl.models.modelfile import save_model_file
from dspl.workflows.export import export_model

CLASSES = ClassConfig.from_dict(CLASS_DICT)
VARIANTS = [
    pytest.param(dict(prediction_type="regression"), REGRESSION_CLASSES, id="regression"),
    pytest.param(dict(use_plot_images=False, top_db=60.0, chunk_size=0.5, chunk_hop_size=0.5), CLASS_DICT,
                 id="raw-features-top-db"),
]


@pytest.fixture(scope="module")
def example_chunks(tmp_path_factory: pytest.TempPathFactory) -> torch.Tensor:
    """One-second chunks of the example set's test files (16 kHz)."""
    from dspl.data.audio import load_audio

    root = write_example_data(tmp_path_factory.mktemp("variants"), files_per_class=2, seed=3)
    files = sorted((root / "audio").glob("test_*.wav"))
    return torch.stack([load_audio(f, 16000)[:16000] for f in files])


@pytest.mark.parametrize(("overrides", "classes"), VARIANTS)
def test_variant_exports_match_pytorch(tmp_path, example_chunks, overrides, classes):
    overrides = dict(overrides)  # the parameter is shared between runs: leave it as it is
    prediction_type = overrides.pop("prediction_type", "categorical")
    hp = tiny_config(prediction_type, **overrides)
    classes = ClassConfig.from_dict(classes)
    torch.manual_seed(0)
    model = create_model(hp.model, classes.num_classes, in_chans=hp.spec.input_channels, pretrained=False).eval()
    chunks = example_chunks[:, : hp.spec.chunk_samples]
    with torch.no_grad():
        inputs = PlotTransform(hp.spec)(chunks)
        expected = model(inputs).numpy()
    model_file = save_model_file(tmp_path / "model.h5", model, hp, classes, tuple(inputs.shape[1:]))

    options = ExportOptions(formats=("tflite",), quantize=("fp32",), end_to_end=True)
    written = export_model(model_file, tmp_path / "out", options).files

    assert expected.shape == (len(chunks), classes.num_classes)
    image_scores = tflite_predict(written["tflite_fp32"], inputs.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(image_scores, expected, atol=1e-4)
    end_to_end = tflite_predict(written["end_to_end_fp32"], chunks.numpy())
    np.testing.assert_allclose(end_to_end, expected, atol=1e-4)
    if prediction_type == "regression":
        assert np.ptp(expected) > 0  # distinct inputs give distinct values: the comparison is not of constants


@pytest.fixture(scope="module")
def example_files(tmp_path_factory: pytest.TempPathFactory) -> list:
    """Whole example files of two lengths (0.8 s and 1.3 s at 16 kHz)."""
    from dspl.data.audio import load_audio

    root = write_example_data(tmp_path_factory.mktemp("whole"), files_per_class=2, seed=5)
    files = sorted((root / "audio").glob("test_*.wav"))
    return [load_audio(f, 16000)[:int(seconds * 16000)] for f, seconds in zip(files, (0.8, 1.3, 0.8))]


@pytest.mark.parametrize("resize_method, anti_alias, seconds", [("nearest", False, None), ("bilinear", True, 1.0)],
                         ids=["any-length-nearest", "fixed-length-bilinear-aa"])
def test_whole_file_exports_match_pytorch_per_file(tmp_path, example_files, resize_method, anti_alias, seconds):
    """Whole-file models: the end-to-end model scores each file as PyTorch scores that file by itself; with a
    built-in resize kernel at any length, else at the fixed length the export was given."""
    hp = tiny_config("categorical", chunk_size=0.0, resize_method=resize_method, anti_alias=anti_alias)
    classes = CLASSES
    torch.manual_seed(0)
    model = create_model(hp.model, classes.num_classes, in_chans=hp.spec.input_channels, pretrained=False).eval()
    model_file = save_model_file(tmp_path / "model.h5", model, hp, classes)

    options = ExportOptions(quantize=("fp32", "dynamic"), end_to_end=True,
                            inputs=InputSources(whole_file_seconds=seconds), min_agreement=0.0)
    written = export_model(model_file, tmp_path / "out", options).files

    files = example_files if seconds is None else [torch.nn.functional.pad(f, (0, 16000 - len(f)))[:16000]
                                                   for f in example_files]
    assert len({len(f) for f in files}) == (2 if seconds is None else 1)
    transform = PlotTransform(hp.spec)
    with torch.no_grad():
        expected = np.concatenate([model(transform(f[None])).numpy() for f in files])
    np.testing.assert_allclose(tflite_predict(written["end_to_end_fp32"], [f.numpy() for f in files]), expected,
                               atol=1e-4)
    assert tflite_predict(written["end_to_end_dynamic"], [f.numpy() for f in files]).shape == expected.shape
