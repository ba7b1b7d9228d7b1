"""Backbone weights (dspl.models.weights): local files (.pth, .pt, .bin, .safetensors), one-channel adaptation,
clear errors, pickles that would run code, 'imagenet' weights offline."""

from __future__ import annotations

import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import timm
import torch
from helpers import RunsCode, tiny_config

from dspl.errors import DsplError
from dspl.models.registry import create_backbone


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_round_trip(tmp_path, suffix):
    source = timm.create_model("test_resnet", num_classes=5)  # a full model: its head keys are ignored
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    else:
        torch.save({"state_dict": source.state_dict()}, path)
    backbone = create_backbone("test_resnet", str(path))
    loaded = backbone.module.state_dict()
    for key, value in loaded.items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_local_weights_adapt_first_conv_to_one_channel(tmp_path):
    source = timm.create_model("test_resnet", num_classes=0)
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    backbone = create_backbone("test_resnet", str(path), in_chans=1)
    first = backbone.module.state_dict()["conv1.0.weight"]
    assert torch.allclose(first, source.state_dict()["conv1.0.weight"].sum(1, keepdim=True))


def test_local_weights_missing_file(tmp_path):
    with pytest.raises(DsplError, match=r"weights: file not found: .*nope\.pth"):
        create_backbone("test_resnet", str(tmp_path / "nope.pth"))


@pytest.mark.parametrize("where, kind", [("/dev/zero", "a device"), ("folder", "a directory")])
def test_local_weights_that_are_no_regular_file_say_what_they_are(tmp_path, where, kind):
    path = Path(where) if where.startswith("/") else tmp_path
    with pytest.raises(DsplError) as error:
        create_backbone("test_resnet", str(path))
    assert str(error.value) == f"weights: {path}: is {kind}, expected a regular file (weights file)"


def test_local_weights_mismatch_is_reported(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet").state_dict(), path)
    with pytest.raises(DsplError, match=r"does not match the backbone \(missing keys: .*unexpected keys"):
        create_backbone("test_resnet", str(path))


def test_keras_weights_file_is_refused_clearly(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\x89HDF")
    with pytest.raises(DsplError, match=r"Keras weight files cannot be loaded"):
        create_backbone("test_resnet", str(path))


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a pickle")
    with pytest.raises(DsplError, match=r"junk.pt: not a state dict \(or truncated\): it cannot be unpickled$"):
        create_backbone("test_resnet", str(path))


def test_imagenet_offline_without_cache_explains_how_to_provide_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DsplError) as err:
        create_backbone("test_resnet", "imagenet")
    message = str(err.value)
    assert "not available offline" in message
    assert "timm/test_resnet" in message and "HF_HUB_OFFLINE" in message
    assert "local .pth" in message


def test_torchvision_imagenet_weights_loaded_without_head(monkeypatch):
    import torchvision

    reference = torchvision.models.squeezenet1_0(weights=None).state_dict()
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", lambda url, **kw: reference)
    backbone = create_backbone("squeezenet_v1", "imagenet")
    for key, value in backbone.module.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_torchvision_imagenet_offline_message(monkeypatch):
    import torchvision

    def offline(url, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(DsplError, match=r"weights: 'imagenet' weights for torchvision 'squeezenet1_0' are not "
                                        r"available offline .*torch hub cache"):
        create_backbone("squeezenet_v1", "imagenet")


@pytest.mark.parametrize(("suffix", "wrapped"), [(".pt", False), (".bin", False), (".pt", True)])
def test_pt_and_bin_weight_files_load(tmp_path, suffix, wrapped):
    torch.manual_seed(4)
    source = timm.create_model("test_resnet", num_classes=0)
    state = source.state_dict()
    path = tmp_path / f"weights{suffix}"
    torch.save({"state_dict": state} if wrapped else state, path)
    backbone = create_backbone("test_resnet", str(path))
    loaded = backbone.module.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    fresh = create_backbone("test_resnet", "").module.state_dict()  # the file made a difference
    assert not torch.equal(fresh["conv1.0.weight"], loaded["conv1.0.weight"])


def test_weights_file_through_the_config_trains_from_it(tmp_path):
    from dspl.models import create_model

    torch.manual_seed(5)
    source = timm.create_model("test_efficientnet", num_classes=0)
    path = tmp_path / "backbone.bin"
    torch.save(source.state_dict(), path)
    model = create_model(tiny_config(weights=str(path)).model, 3)
    assert torch.equal(model.backbone.conv_stem.weight, source.conv_stem.weight)


def test_malicious_backbone_weights_are_refused_without_running_them(tmp_path):
    from dspl.models.weights import read_state_dict

    marker, evil = tmp_path / "ran.txt", tmp_path / "weights.pth"
    torch.save({"state_dict": RunsCode(marker)}, evil)
    with pytest.raises(DsplError) as error:
        read_state_dict(evil)
    assert str(error.value) == (f"weights: {evil}: not a state dict: it holds Python objects other than tensors and "
                                "plain data, which dspl never loads")
    assert not marker.exists()


def test_imagenet_weights_without_network_or_cache_fail_within_seconds(tmp_path, monkeypatch):
    import socket

    from huggingface_hub import constants

    from dspl.models.registry import create_backbone

    attempts = []

    def unreachable(address, *args, **kwargs):
        attempts.append(address)
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    start = time.monotonic()
    with pytest.raises(DsplError) as error:
        create_backbone("mobilenetv3_small_050", "imagenet")
    assert time.monotonic() - start < 5
    assert attempts == [(constants.ENDPOINT.split("://")[1].split("/")[0].split(":")[0], 443)]
    assert str(error.value) == (
        "weights: 'imagenet' weights for 'mobilenetv3_small_050' are not available offline (OSError). They come "
        "from the Hugging Face hub repo 'timm/mobilenetv3_small_050.lamb_in1k': download it once with network "
        "access (e.g. `hf download timm/mobilenetv3_small_050.lamb_in1k`) into the HF cache (HF_HOME; it is used "
        "offline with HF_HUB_OFFLINE=1); or set weights to a local .pth/.pt/.bin/.safetensors file, or to '' for "
        "random initialisation")
