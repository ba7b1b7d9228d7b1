"""The chunk dataset (dspl.data.dataset): items, cache, whole-file mode, class up-sampling, collation."""

from __future__ import annotations

import pytest
import torch
from helpers import example_config

import dspl.data.dataset as dataset_module
from dspl.data.dataset import ChunkDataset, class_counts, collate_chunks, upsample_indices


def test_upsample_indices_repeats_minority_files_in_order():
    targets = [0, 0, 0, 1, 2, 2, 0]
    indices = upsample_indices(targets, 3)
    assert indices == [0, 1, 2, 3, 4, 5, 6, 3, 3, 3, 4, 5]
    assert class_counts([targets[i] for i in indices], 3) == [4, 4, 4]
    assert upsample_indices([1, 1], 3) == [0, 1]  # a class without files cannot be up-sampled


def test_items_of_a_chunk_dataset(tmp_path, write_sine):
    long = write_sine(tmp_path / "long.wav", seconds=2.3)    # 3 chunks
    short = write_sine(tmp_path / "short.wav", seconds=0.75)  # padded to 1 chunk
    medium = write_sine(tmp_path / "medium.wav", seconds=1.2, sample_rate=8000)  # resampled, 1 chunk
    ds = ChunkDataset([long, short, medium], example_config().spec, targets=[2, 0, 1], file_indices=[5, 6, 7])
    assert len(ds) == 5 and ds.short_files == [short]
    items = [ds[i] for i in range(len(ds))]
    assert [(int(i["file_index"]), int(i["chunk_index"]), int(i["target"])) for i in items] == [
        (5, 0, 2), (5, 1, 2), (5, 2, 2), (6, 0, 0), (7, 0, 1)]
    assert all(i["audio"].shape == (16000,) and i["audio"].dtype == torch.float32 for i in items)
    assert items[0]["target"].dtype == torch.int64
    assert torch.count_nonzero(items[3]["audio"][12000:]) == 0


def test_regression_targets_are_float32(tmp_path, write_sine):
    path = write_sine(tmp_path / "a.wav", seconds=1.0)
    item = ChunkDataset([path], example_config().spec, targets=[0.25], regression=True)[0]
    assert item["target"].dtype == torch.float32 and item["target"].item() == 0.25


def test_items_without_targets(tmp_path, write_sine):
    item = ChunkDataset([write_sine(tmp_path / "a.wav")], example_config().spec)[0]
    assert set(item) == {"audio", "file_index", "chunk_index"}


@pytest.mark.parametrize("cache, decodes", [(True, 2), (False, 2 * 2 * 4)])
def test_decoded_audio_is_cached_across_epochs(tmp_path, write_sine, monkeypatch, cache, decodes):
    paths = [write_sine(tmp_path / f"{n}.wav", seconds=2.5) for n in "ab"]  # 4 chunks each
    calls = []
    real_load = dataset_module.load_audio
    monkeypatch.setattr(dataset_module, "load_audio", lambda p, sr: calls.append(p) or real_load(p, sr))
    ds = ChunkDataset(paths, example_config().spec, targets=[0, 1], cache=cache)
    ds.preload()
    for _ in range(2):  # two epochs
        for i in range(len(ds)):
            ds[i]
    assert len(calls) == decodes


def test_whole_file_mode_keeps_each_file_length(tmp_path, write_sine):
    paths = [write_sine(tmp_path / "a.wav", seconds=0.5), write_sine(tmp_path / "b.wav", seconds=1.25),
             write_sine(tmp_path / "c.wav", seconds=0.01)]  # c: shorter than one STFT window (0.032 s)
    ds = ChunkDataset(paths, example_config(chunk_size=0.0).spec, targets=[0, 1, 1])
    assert len(ds) == 3 and ds.chunk_length == 0 and ds.short_files == [paths[2]]
    assert [ds[i]["audio"].shape[0] for i in range(3)] == [8000, 20000, 512]
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_chunks)))
    assert batch["audio"].shape == (3, 20000) and batch["length"].tolist() == [8000, 20000, 512]
    assert torch.equal(batch["audio"][0, :8000], ds[0]["audio"]) and torch.count_nonzero(batch["audio"][0, 8000:]) == 0
    assert batch["target"].tolist() == [0, 1, 1]


def test_equal_lengths_stack_without_lengths(tmp_path, write_sine):
    ds = ChunkDataset([write_sine(tmp_path / "a.wav", seconds=2.0)], example_config().spec, targets=[0])
    batch = collate_chunks([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 16000) and "length" not in batch
