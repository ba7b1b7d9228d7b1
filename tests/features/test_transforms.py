"""PlotTransform (dspl.features.transforms): orientation, degenerate signals, shapes, batching and caching of
the batched torch plots."""

from __future__ import annotations

import pytest
import torch
from helpers import ROOT, build_config

from dspl.config import load_config
from dspl.errors import DsplError
from dspl.features import FeatureTransform, PlotTransform
from dspl.spec import PreprocessingSpec

RATE = 16000
CONFIG = ROOT / "configs" / "hp_config.json"


def make_spec(**overrides) -> PreprocessingSpec:
    """The shipped example config cut down to 1 s chunks and 48x40 images, with overrides."""
    return build_config({**load_config(CONFIG).to_dict(), "sample_rate": RATE, "chunk_size": 1.0,
                         "chunk_hop_size": 0.5, "stft_window_size": 0.032, "stft_hop_size": 0.016,
                         "stft_fft_length": 0.032, "num_mel_bins": 64, "upper_edge_hertz": 8000.0, "image_height": 48,
                         "image_width": 40, "resize_method": "bilinear", "anti_alias": True, **overrides}).spec


def tone(frequency: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    return (0.5 * torch.sin(2 * torch.pi * frequency * t)).float()


@pytest.mark.parametrize("overrides", [{}, {"mel_scale": False}, {"resize_method": "nearest", "anti_alias": False},
                                       {"db_scale": False, "color_map": "magma"}])
def test_low_tone_at_bottom_high_tone_at_top(overrides: dict) -> None:
    plots = PlotTransform(make_spec(**overrides))(torch.stack([tone(200.0), tone(6500.0)]))
    energy = plots.sum(dim=(1, 3))  # brightness per row (all colour maps here get brighter with the value)
    low_row, high_row = energy.argmax(dim=1).tolist()
    height = plots.shape[2]
    assert low_row >= 0.85 * height, low_row
    assert high_row <= 0.3 * height, high_row


@pytest.mark.parametrize("normalize_audio", [False, True])
@pytest.mark.parametrize("overrides", [{}, {"num_mfccs": 13, "cep_lifter": 22}, {"use_plot_images": False},
                                       {"db_scale": False}])
def test_silence_constant_and_click_are_finite(overrides: dict, normalize_audio: bool) -> None:
    click = torch.zeros(RATE)
    click[RATE // 2] = 1.0
    audio = torch.stack([torch.zeros(RATE), torch.full((RATE,), 0.3), click])
    out = PlotTransform(make_spec(normalize_audio=normalize_audio, **overrides))(audio)
    assert torch.isfinite(out).all()
    if make_spec(**overrides).use_plot_images:
        assert out.min() >= 0.0 and out.max() <= 255.0


@pytest.mark.parametrize("overrides, shape", [
    ({}, (3, 48, 40)),
    ({"use_plot_images": False}, (1, 61, 64)),
    ({"use_plot_images": False, "mel_scale": False}, (1, 61, 257)),
    ({"use_plot_images": False, "num_mfccs": 13}, (1, 61, 13)),
    ({"num_mfccs": 13}, (3, 48, 40)),
    ({"stft_fft_length": 0.064, "mel_scale": False, "use_plot_images": False}, (1, 61, 513)),
])
def test_output_shapes(overrides: dict, shape: tuple) -> None:
    transform = PlotTransform(make_spec(**overrides))
    out = transform(torch.randn(2, RATE))
    assert tuple(out.shape) == (2, *shape)
    assert out.dtype == torch.float32
    assert transform.output_shape(RATE) == shape


def test_each_chunk_is_independent_of_its_batch() -> None:
    transform = PlotTransform(make_spec(normalize_audio=True))
    audio = torch.randn(4, RATE) * torch.tensor([[0.01], [1.0], [0.1], [3.0]])
    together = transform(audio)
    alone = torch.cat([transform(audio[i:i + 1]) for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-3)


def test_mixed_precision_autocast_does_not_change_the_plots() -> None:
    transform = PlotTransform(make_spec())
    audio = torch.randn(2, RATE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = transform(audio)
    assert mixed.dtype == torch.float32
    assert torch.allclose(mixed, transform(audio), atol=1e-3)


def test_other_lengths_work_and_reuse_the_cached_matrix() -> None:
    transform = PlotTransform(make_spec(chunk_size=0.0))
    first = transform(torch.randn(1, 12345))
    second = transform(torch.randn(3, 12345))
    assert first.shape == (1, 3, 48, 40) and second.shape == (3, 3, 48, 40)
    assert len(transform._resize_cache) == 1


def test_whole_files_in_one_padded_batch_equal_their_own_plots() -> None:
    """Whole-file mode: each row's plot comes from its own samples, not from the zero padding after them."""
    transform = PlotTransform(make_spec(chunk_size=0.0, normalize_audio=True))
    short, long = tone(300.0, 0.4), tone(300.0, 1.3)
    batch = torch.zeros(2, long.shape[0])
    batch[0, :short.shape[0]], batch[1] = short, long
    together = transform(batch, lengths=[short.shape[0], long.shape[0]])
    assert torch.equal(together[0], transform(short[None])[0])
    assert torch.equal(together[1], transform(long[None])[0])
    assert not torch.allclose(transform(batch)[0], together[0], atol=1.0)  # padded, the short file is squeezed


def test_too_short_audio_is_a_user_error() -> None:
    with pytest.raises(DsplError, match="shorter than the STFT window"):
        PlotTransform(make_spec())(torch.zeros(1, 100))


def test_buffers_stay_out_of_the_state_dict_and_follow_the_device() -> None:
    transform = PlotTransform(make_spec(num_mfccs=13))
    assert transform.state_dict() == {}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        out = transform.to(device)(torch.randn(2, RATE, device=device))
    assert out.device.type == device
    assert FeatureTransform(make_spec()).num_features == 64
