"""The Exporter and its options (dspl.export.exporter): argument errors before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from dspl.errors import DsplError


def test_export_argument_errors(tiny_loaded, tmp_path: Path) -> None:
    from dspl.export.exporter import Exporter, ExportOptions
    from dspl.export.inputs import InputSources

    with pytest.raises(DsplError, match="calibration audio"):
        ExportOptions(quantize=("int8",))
    with pytest.raises(DsplError, match="format: value tfjs"):
        ExportOptions(formats=("tfjs",))
    with pytest.raises(DsplError, match="quantize: value int4"):
        ExportOptions(quantize=("int4",))
    with pytest.raises(DsplError, match="data directory"):
        Exporter(ExportOptions(inputs=InputSources(label_file=tmp_path / "label.csv"))).export(tiny_loaded, tmp_path)
    with pytest.raises(DsplError, match="label file"):
        Exporter(ExportOptions(inputs=InputSources(data_dir=tmp_path))).export(tiny_loaded, tmp_path)


@pytest.mark.slow
def test_an_unfaithful_quantisation_names_the_less_quantised_ones_and_writes_nothing(tiny_loaded,
                                                                                    tmp_path: Path) -> None:
    from dspl.export.exporter import Exporter, ExportOptions

    out = tmp_path / "out"
    options = ExportOptions(quantize=("fp32", "dynamic"), min_agreement=1.01)  # no model can agree on 101 %
    with pytest.raises(DsplError, match=r"^TFLite dynamic vs float: top-1 agreement [\d.]+ % with the float model is "
                                        r"below 101 %; the model does not survive dynamic quantisation: export it "
                                        r"with --quantize fp16 or fp32$"):
        Exporter(options).export(tiny_loaded, out)
    assert not list(out.glob("*.tflite"))


def test_each_step_is_told_as_it_starts(tiny_loaded, tmp_path: Path) -> None:
    from dspl.export.exporter import Exporter, ExportOptions

    steps: list[str] = []
    Exporter(ExportOptions(formats=("onnx",)), steps.append).export(tiny_loaded, tmp_path)
    assert steps == ["preparing the inputs to verify (and calibrate) with", "step 1: PyTorch -> ONNX"]
    assert (tmp_path / "model.onnx").is_file()
