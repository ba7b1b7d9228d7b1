"""Using a trained model: predict, devel-test, stats and the Python API, on a model trained by `dspl train`."""

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from sklearn.metrics import recall_score

import dspl
from dspl.cli.main import cli
from dspl.data.audio import audio_frames
from dspl.data.chunking import num_chunks


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_load_model_returns_eval_model_with_configs(trained_model, example_dir):
    predictor = dspl.load_model(trained_model)
    assert not predictor.model.training
    assert predictor.classes.to_dict() == json.loads((example_dir / "class_config.json").read_text())
    assert predictor.config.model.basemodel_name == "test_efficientnet"


def test_predict_on_a_path_and_on_a_waveform_agree(trained_model, example_dir):
    predictor = dspl.load_model(trained_model)
    path = sorted((example_dir / "audio").glob("test_*.wav"))[0]
    from_path = predictor.predict(path)
    waveform, rate = sf.read(path, dtype="float32")
    assert rate == predictor.config.spec.sample_rate
    from_waveform = predictor.predict(waveform)
    np.testing.assert_array_equal(from_path.chunk_scores, from_waveform.chunk_scores)
    chunks = num_chunks(len(waveform), predictor.config.spec)
    assert from_path.chunk_scores.shape == (chunks, predictor.classes.num_classes)
    np.testing.assert_allclose(from_path.chunk_scores.sum(axis=1), 1.0, atol=1e-5)
    assert from_path.decision in predictor.classes.labels
    assert from_path.decision == predictor.classes.labels[int(np.argmax(from_path.chunk_scores.mean(0)))]


def test_batched_prediction_over_files_equals_one_by_one(trained_model, example_dir):
    files = sorted((example_dir / "audio").glob("*.wav"))[:7]
    batched = list(dspl.load_model(trained_model, batch_size=5).predict_files(files))
    single = [dspl.load_model(trained_model, batch_size=1).predict(f) for f in files]
    assert [p.source for p in batched] == [str(f) for f in files]
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a.chunk_scores, b.chunk_scores, atol=1e-6)


def test_saved_and_reloaded_model_is_bit_identical(trained_model, tmp_path):
    from dspl.loading import load_model_file
    from dspl.models.modelfile import save_model_file

    loaded = load_model_file(trained_model)
    copy = save_model_file(tmp_path / "copy.h5", loaded.model, loaded.config, loaded.classes)
    again = load_model_file(copy)
    x = torch.rand(4, 3, loaded.config.spec.image_height, loaded.config.spec.image_width) * 255
    with torch.no_grad():
        assert torch.equal(loaded.model(x), again.model(x))


def test_predict_cli_writes_deepspectrumlite_csv(trained_model, example_dir):
    audio = example_dir / "audio"
    result = run("-v", "predict", "-md", str(trained_model), "-d", str(audio))
    assert result.exit_code == 0, result.output
    out = trained_model.parent / "test" / "test"
    rows = read_csv(out / "test.chunks.predictions.csv")
    files = sorted(audio.glob("*.wav"))
    hp = dspl.load_model(trained_model).config.spec
    assert len(rows) == sum(num_chunks(audio_frames(f, hp.sample_rate), hp) for f in files)
    labels = list(json.loads((example_dir / "class_config.json").read_text()))
    assert list(rows[0]) == ["filename", "time", *(f"prob_{label}" for label in labels), "prediction"]
    probs = np.array([[float(r[k]) for k in r if k.startswith("prob_")] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    grouped = read_csv(out / "test.grouped.predictions.csv")
    assert [r["filename"] for r in grouped] == [f.name for f in files]


def model_grid(trained_model: Path, path: Path, **changes) -> Path:
    """The model's own configuration written as a grid file, with some keys changed."""
    hp = {**dspl.load_model(trained_model).config.to_dict(), **changes}
    path.write_text(json.dumps({key: [value] for key, value in hp.items()}))
    return path


def test_predict_checks_given_configs_against_the_model(trained_model, example_dir, tmp_path):
    audio = str(example_dir / "audio")
    same = model_grid(trained_model, tmp_path / "same.json", batch_size=3, epochs=9)  # training keys may differ
    assert run("predict", "-md", str(trained_model), "-d", audio, "-hc", str(same)).exit_code == 0
    bad = model_grid(trained_model, tmp_path / "hp.json", sample_rate=8000, upper_edge_hertz=4000.0)
    result = run("predict", "-md", str(trained_model), "-d", audio, "-hc", str(bad))
    assert result.exit_code == 1
    assert "no configuration matches the model" in result.output and "key 'sample_rate' is 8000" in result.output
    classes = tmp_path / "cc.json"
    classes.write_text(json.dumps({"a": "A", "b": "B"}))
    result = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio"), "-cc", str(classes))
    assert result.exit_code == 1 and "classes ['a', 'b'] differ from the model's" in result.output


def test_predict_with_a_glob_over_models(trained_model, example_dir, tmp_path):
    import shutil

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(trained_model, tmp_path / name / "model.h5")
    result = run("predict", "-md", str(tmp_path / "*" / "model.h5"), "-d", str(example_dir / "audio"))
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        assert (tmp_path / name / "test" / "test" / "test.chunks.predictions.csv").is_file()


def test_devel_test_writes_metrics_that_match_sklearn(trained_model, example_dir, tmp_path):
    hp_config = model_grid(trained_model, tmp_path / "hp.json")
    result = run("devel-test", "-md", str(trained_model), "-d", str(example_dir / "audio"),
                 "-l", str(example_dir / "label.csv"), "-hc", str(hp_config),
                 "-cc", str(example_dir / "class_config.json"))
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output  # the classification report
    labels = list(json.loads((example_dir / "class_config.json").read_text()))
    for partition in ("devel", "test"):
        out = trained_model.parent / "evaluation" / partition
        for level in ("chunks", "grouped"):
            metrics = json.loads((out / f"{partition}.{level}.metrics.json").read_text())
            rows = read_csv(out / f"{partition}.{level}.predictions.csv")
            y_true = [labels.index(r["label"]) for r in rows]
            y_pred = [labels.index(r["prediction"]) for r in rows]
            assert metrics["uar"] == pytest.approx(100 * recall_score(y_true, y_pred, labels=[0, 1, 2],
                                                                      average="macro", zero_division=0))
            assert np.asarray(metrics["cm"]).sum() == len(rows)
            assert (out / f"{partition}.{level}.confusion_matrix.png").stat().st_size > 1000
        chunk_rows = read_csv(out / f"{partition}.chunks.predictions.csv")
        files = {r["filename"] for r in chunk_rows}
        hp = dspl.load_model(trained_model).config.spec
        assert len(chunk_rows) == sum(num_chunks(audio_frames(example_dir / "audio" / f, 16000), hp) for f in files)


def test_stats_reports_parameters_flops_and_layers(trained_model):
    result = run("stats", "-md", str(trained_model), "--json", "--runs", "2")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    model = dspl.load_model(trained_model).model
    assert stats["params_total"] == sum(p.numel() for p in model.parameters())
    # FLOPs by hand: 2 · MACs of every convolution and linear layer (the only operators that count)
    x = torch.zeros(stats["input_shape"])
    macs = []

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs.append(output.numel() * module.in_channels // module.groups * kh * kw)
        elif isinstance(module, torch.nn.Linear):
            macs.append(output.numel() * module.in_features)

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    assert stats["input_shape"] == [1, 3, 32, 32]
    # the stem: a 3×3 convolution, stride 2, 3 -> 24 channels on 32×32: 24·16·16 outputs × 3·3·3 MACs each
    assert macs[0] == 24 * 16 * 16 * 27 == 165_888
    assert stats["macs"] == sum(macs) and stats["flops"] == 2 * sum(macs)
    assert stats["file_size_bytes"] == trained_model.stat().st_size
    assert sum(row["params"] for row in stats["layers"]) == stats["params_total"]
    assert 0 < stats["latency"]["min_ms"] <= stats["latency"]["median_ms"] <= stats["latency"]["p90_ms"]
    table = run("stats", "-d", str(trained_model), "--runs", "2")  # DeepSpectrumLite's README spelling
    assert table.exit_code == 0 and "FLOPs" in table.output


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


def test_keras_h5_is_refused_with_a_clear_message(tmp_path, example_dir):
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.5.0"
        f.attrs["backend"] = "tensorflow"
    result = run("predict", "-md", str(path), "-d", str(example_dir / "audio"))
    assert result.exit_code == 1 and "Keras" in result.output


def test_the_lightning_checkpoint_loads_to_the_same_model(trained_model):
    checkpoint = trained_model.with_name("model.ckpt")
    from_h5, from_ckpt = dspl.load_model(trained_model), dspl.load_model(checkpoint)
    assert from_ckpt.config == from_h5.config and from_ckpt.classes == from_h5.classes
    x = torch.rand(2, 3, from_h5.config.spec.image_height, from_h5.config.spec.image_width) * 255
    with torch.no_grad():
        assert torch.equal(from_h5.model(x), from_ckpt.model(x))


def test_a_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, path)
    result = run("stats", "-md", str(path))
    assert result.exit_code == 1 and "not a checkpoint written by dspl training" in result.output


def test_predict_loads_each_model_once_for_many_files(trained_model, example_dir, monkeypatch):
    import dspl.workflows.predict
    from dspl.workflows.predict import predict

    calls = []
    real = dspl.workflows.predict.load_model_file
    monkeypatch.setattr(dspl.workflows.predict, "load_model_file",
                        lambda path, *configs: calls.append(path) or real(path, *configs))
    files = sorted((example_dir / "audio").glob("*.wav"))
    assert len(files) >= 15
    predict(trained_model, example_dir / "audio", batch_size=4)
    assert calls == [trained_model]


def test_predict_takes_a_glob_of_audio_files_as_deepspectrumlite_documented(trained_model, example_dir):
    result = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio" / "test_*.wav"))
    assert result.exit_code == 0, result.output
    rows = read_csv(trained_model.parent / "test" / "test" / "test.grouped.predictions.csv")
    assert [r["filename"] for r in rows] == sorted(p.name for p in (example_dir / "audio").glob("test_*.wav"))
    missing = run("predict", "-md", str(trained_model), "-d", str(example_dir / "audio" / "none_*.wav"))
    assert missing.exit_code == 1 and "the pattern matches no audio files" in missing.output
