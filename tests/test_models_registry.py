"""Backbone registry: DeepSpectrumLite names → timm, errors with suggestions, weights sources."""

from __future__ import annotations

import io

import huggingface_hub.constants
import pytest
import timm
import torch

from dspl.errors import DsplError
from dspl.models.backbones import DSL_BACKBONES, TORCHVISION_BACKBONES, resolve_backbone_name
from dspl.models.registry import create_backbone


def test_every_deepspectrumlite_name_maps_to_an_existing_model():
    timm_models = set(timm.list_models())
    for dsl_name, target in DSL_BACKBONES.items():
        if target is None:
            continue
        assert target in timm_models or target in TORCHVISION_BACKBONES, dsl_name
        assert resolve_backbone_name(dsl_name) == target
    assert resolve_backbone_name("mobilenet") == "mobilenetv1_100"
    assert resolve_backbone_name("squeezenet_v1") == "squeezenet1_0"


def test_timm_names_pass_through():
    assert resolve_backbone_name("test_efficientnet") == "test_efficientnet"
    assert resolve_backbone_name("resnet50.a1_in1k") == "resnet50.a1_in1k"
    with pytest.raises(DsplError, match=r"resnet50.bogus.*resnet50.a1_in1k"):
        resolve_backbone_name("resnet50.bogus")


def test_name_without_pytorch_port_lists_alternatives():
    with pytest.raises(DsplError, match=r"basemodel_name: 'nasnet_mobile'.*mnasnet_100"):
        resolve_backbone_name("nasnet_mobile")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(DsplError, match=r"unknown backbone 'densenet12'.*densenet121"):
        resolve_backbone_name("densenet12")


def test_random_init_backbone_gives_pooled_features():
    backbone = create_backbone("test_efficientnet", "")
    out = backbone.module(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, backbone.num_features)
    assert len(backbone.mean) == 3 and len(backbone.std) == 3


def test_vgg_ends_at_its_last_conv_block_like_keras_without_top():
    backbone = create_backbone("vgg11", "")
    assert backbone.num_features == 512
    assert not any(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (7, 7) for m in backbone.module.modules())
    x = torch.rand(1, 3, 64, 64)  # 2x2 after the conv blocks: timm's fc6 would pool it up to 7x7
    assert backbone.module(x).shape == (1, 512)
    buffer = io.BytesIO()
    torch.onnx.export(backbone.module.eval(), (x,), buffer, opset_version=17, dynamo=False)
    assert buffer.tell() > 0


def test_torchvision_squeezenet_backbone_one_channel():
    backbone = create_backbone("squeezenet_v1", "", in_chans=1)
    assert backbone.module(torch.rand(2, 1, 48, 48)).shape == (2, 512)


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
