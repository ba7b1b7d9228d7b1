"""The model file (dspl.models.modelfile): HDF5 round trip (bit-identical outputs), header, atomic writes; clear
errors for other files, foreign and malicious checkpoints."""

from __future__ import annotations

import json

import h5py
import pytest
import torch
from helpers import CLASS_DICT, RunsCode, one_error_line, run, tiny_config

from dspl.config import ClassConfig
from dspl.errors import DsplError
from dspl.loading import load_model_file
from dspl.models import create_model
from dspl.models.modelfile import FORMAT, FORMAT_VERSION, read_model_file, save_model_file

CLASSES = ClassConfig.from_dict(CLASS_DICT)


@pytest.fixture()
def trained():
    """A tiny model whose batch-norm statistics moved away from their initial values."""
    torch.manual_seed(0)
    hp = tiny_config()
    model = create_model(hp.model, CLASSES.num_classes, pretrained=False)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 32, 32) * 255)
    return hp, model.eval()


def test_round_trip_gives_bit_identical_outputs(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    loaded = load_model_file(path)
    assert not loaded.model.training
    assert loaded.config == hp and loaded.classes == CLASSES
    x = torch.rand(5, 3, 32, 32) * 255
    with torch.no_grad():
        assert torch.equal(model(x), loaded.model(x))
    original, stored = model.state_dict(), read_model_file(path).state
    assert original.keys() == stored.keys()
    assert all(torch.equal(original[k], stored[k]) and original[k].dtype == stored[k].dtype for k in original)
    assert stored["backbone.bn1.num_batches_tracked"].shape == ()


def test_header_records_format_versions_configs_and_input_shape(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT and f.attrs["format_version"] == FORMAT_VERSION
        assert f.attrs["torch_version"] == torch.__version__ and f.attrs["dspl_version"]
        assert json.loads(f.attrs["hp"]) == hp.to_dict()
        assert list(json.loads(f.attrs["classes"])) == ["low", "high", "noise"]
        assert f.attrs["backbone"] == "test_efficientnet"
        assert list(f.attrs["input_shape"]) == [3, 32, 32]
        assert set(f["state_dict"]) == set(model.state_dict())


def test_file_from_before_a_key_existed_reads_with_its_default(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    with h5py.File(path, "r+") as f:  # as a file written before these keys existed
        f.attrs["hp"] = json.dumps({k: v for k, v in hp.to_dict().items()
                                    if k not in ("top_db", "lr_decay", "augment_stretch")})
    loaded = load_model_file(path)
    assert loaded.config == hp
    values = loaded.config.to_dict()
    assert values["top_db"] is None and values["lr_decay"] == "none" and values["augment_stretch"] is False


def test_tensors_keep_their_dtype(tmp_path, trained):
    hp, model = trained
    half = create_model(hp.model, CLASSES.num_classes, pretrained=False).to(torch.bfloat16)
    half.head.output.bias.data = torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)
    path = save_model_file(tmp_path / "model.h5", half, hp, CLASSES)
    state = read_model_file(path).state
    assert state["head.output.weight"].dtype == torch.bfloat16
    assert state["head.output.bias"].tolist() == [1.5, -2.25, 3.0]
    assert state["backbone.bn1.num_batches_tracked"].dtype == torch.int64


def test_overwrite_is_atomic_and_a_failed_write_keeps_the_old_file(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    before = path.read_bytes()
    broken = create_model(hp.model, CLASSES.num_classes, pretrained=False)
    broken.register_buffer("bad/name", torch.zeros(1))
    with pytest.raises(DsplError, match="contains '/'"):
        save_model_file(path, broken, hp, CLASSES)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.h5"]


def test_missing_file(tmp_path):
    with pytest.raises(DsplError, match="model file not found"):
        load_model_file(tmp_path / "nothing.h5")


def test_keras_model_is_named_as_such(tmp_path):
    path = tmp_path / "keras.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.5.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps({"class_name": "Functional"})
        f.create_group("model_weights")
    with pytest.raises(DsplError, match=r"a Keras model \(Functional\) but not one DeepSpectrumLite trained"):
        load_model_file(path)


def test_other_hdf5_file(tmp_path):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=[1, 2, 3])
    with pytest.raises(DsplError, match="not a dspl model file"):
        load_model_file(path)


@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_file(tmp_path, trained, keep):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DsplError, match="truncated or corrupt"):
        load_model_file(path)


def test_text_file_is_not_a_model(tmp_path):
    path = tmp_path / "model.h5"
    path.write_text("hello")
    with pytest.raises(DsplError, match="truncated or corrupt"):
        load_model_file(path)


def test_newer_format_version(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DsplError, match=f"format version {FORMAT_VERSION + 1}.*newer dspl.*upgrade"):
        load_model_file(path)


def test_tensors_that_do_not_fit_the_backbone(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    with h5py.File(path, "r+") as f:
        f.attrs["hp"] = json.dumps({**hp.to_dict(), "basemodel_name": "test_resnet"})
    with pytest.raises(DsplError, match="do not fit the 'test_resnet' model"):
        load_model_file(path)


def test_saved_and_reloaded_model_is_bit_identical(trained_model, tmp_path):
    from dspl.loading import load_model_file
    from dspl.models.modelfile import save_model_file

    loaded = load_model_file(trained_model)
    copy = save_model_file(tmp_path / "copy.h5", loaded.model, loaded.config, loaded.classes)
    again = load_model_file(copy)
    x = torch.rand(4, 3, loaded.config.spec.image_height, loaded.config.spec.image_width) * 255
    with torch.no_grad():
        assert torch.equal(loaded.model(x), again.model(x))


# --- files that are not dspl model files: one line, nothing of them run --------------------------------------
@pytest.mark.parametrize("content, message", [
    (None, "file not found"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "cannot read the model file (truncated or corrupt?)"),
])
def test_non_model_files_get_a_clear_message(tmp_path, content, message):
    path = tmp_path / "model.h5"
    if content is not None:
        path.write_bytes(content)
    result = run("stats", "-md", str(path))
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {path}: ") and message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, path)
    result = run("stats", "-md", str(path))
    assert result.exit_code == 1 and "not a checkpoint written by dspl training" in result.output


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    marker = tmp_path / "ran.txt"
    evil = tmp_path / "model.ckpt"
    torch.save({"hyper_parameters": RunsCode(marker)}, evil)
    result = run("predict", "-md", str(evil), "-d", str(tmp_path))
    one_error_line(result, f"{evil}: not a checkpoint written by dspl training: it holds Python objects other than "
                           "tensors and plain data, which dspl never loads")
    assert not marker.exists() and "weights_only=False" not in result.output


def test_an_unpicklable_checkpoint_is_one_line(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    bad = tmp_path / "model.ckpt"
    bad.write_bytes(b"not a pickle at all")
    one_error_line(run("predict", "-md", str(bad), "-d", str(tmp_path)),
                   f"{bad}: not a checkpoint written by dspl training (or truncated): it cannot be unpickled")


def test_a_directory_named_like_a_model_file_is_one_line(tmp_path, write_sine):
    write_sine(tmp_path / "a.wav")
    (tmp_path / "model.h5").mkdir()
    one_error_line(run("predict", "-md", str(tmp_path / "model.h5"), "-d", str(tmp_path)),
                   f"{tmp_path / 'model.h5'}: expected one model file (.h5, .hdf5, .ckpt) in the folder, found "
                   "none: name the file")
    (tmp_path / "model.tflite").mkdir()
    (tmp_path / "x.h5").write_bytes(b"")  # the source is checked first
    one_error_line(run("convert", "-s", str(tmp_path / "x.h5"), "-d", str(tmp_path / "model.tflite")),
                   f"Invalid value for '-d' / '--destination': File '{tmp_path / 'model.tflite'}' is a directory. "
                   "(see 'dspl convert -h')")


def test_a_class_stored_twice_in_a_model_file_is_one_line(tmp_path, trained):
    hp, model = trained
    path = save_model_file(tmp_path / "model.h5", model, hp, CLASSES)
    with h5py.File(path, "r+") as f:  # edited by hand
        f.attrs["classes"] = '{"low": "Low", "high": "High", "low": "Noise"}'
    with pytest.raises(DsplError) as error:
        read_model_file(path)
    assert str(error.value) == f"{path} (class config): key 'low' is given twice, expected each key once"
