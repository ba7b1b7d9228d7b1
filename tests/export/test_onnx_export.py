"""ONNX export (dspl.export.onnx_export): checked and equal to PyTorch; padded max pooling as exact zero padding."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from dspl.errors import DsplError
from dspl.export import calibration


def test_onnx_export_checks_and_matches(tiny_loaded, tmp_path: Path) -> None:
    import onnx

    from dspl.export.onnx_export import export_onnx, onnx_predict

    path = export_onnx(tiny_loaded.model, (3, 32, 32), tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert all(re.fullmatch(r"[A-Za-z0-9.][A-Za-z0-9_./>-]*", n.name) for n in model.graph.node)  # TF op names
    spec = tiny_loaded.config.spec
    plots = calibration.make_plots(spec, calibration.synthetic_chunks(spec, count=3))
    with torch.no_grad():
        expected = tiny_loaded.model(torch.from_numpy(plots)).numpy()
    assert np.max(np.abs(onnx_predict(path, plots) - expected)) <= 1e-5
    with pytest.raises(DsplError, match="opset"):
        export_onnx(tiny_loaded.model, (3, 32, 32), tmp_path / "old.onnx", opset=13)


def test_padded_max_pooling_becomes_exact_zero_padding(tmp_path: Path) -> None:
    """onnx2tf pads padded/ceil-mode pooling with the float minimum (breaks int8); after ReLU zero padding is exact."""
    import onnx

    from dspl.export.onnx_export import export_onnx, onnx_predict

    class Pools(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x)
            a = torch.nn.functional.max_pool2d(y, 3, 2, ceil_mode=True)
            b = torch.nn.functional.max_pool2d(torch.cat([y, y], 1), 3, 2, padding=1, ceil_mode=True)
            c = torch.nn.functional.max_pool2d(x, 2, 2, ceil_mode=True)  # may be negative: left alone
            d = torch.nn.functional.max_pool2d(y, 3, 2, padding=1)  # ResNet's stem pooling
            return torch.cat([a.flatten(1), b.flatten(1), c.flatten(1), d.flatten(1)], 1)

    for size in [(3, 22, 23), (3, 8, 9)]:
        path = export_onnx(Pools(), size, tmp_path / "pools.onnx")
        nodes = onnx.load(str(path)).graph.node
        assert [n.op_type for n in nodes].count("Pad") == 3
        pools = [n for n in nodes if n.op_type == "MaxPool"]
        assert sum(a.i for n in pools for a in n.attribute if a.name == "ceil_mode") == 1
        x = np.random.default_rng(0).standard_normal((3, *size)).astype(np.float32)
        np.testing.assert_array_equal(onnx_predict(path, x), Pools()(torch.from_numpy(x)).numpy())
