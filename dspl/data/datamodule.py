"""The LightningDataModule: label file + data directory -> train/devel/test loaders of audio chunks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from dspl.config import ClassConfig, RunConfig
from dspl.data.audio import audio_frames
from dspl.data.dataset import ChunkDataset, class_counts, collate_chunks, upsample_indices
from dspl.data.parsers import (
    PARTITIONS,
    LabelEntry,
    check_files_exist,
    encode_targets,
    first_few,
    parse_label_file,
)
from dspl.errors import DsplError

logger = logging.getLogger(__name__)

STAGE_PARTITIONS = {"fit": ("train", "devel"), "validate": ("devel",), "test": ("test",), "predict": ("test",)}


class AudioDataModule(L.LightningDataModule):
    """Chunks of the files a label file lists, by partition; categorical training data is class up-sampled.

    `partitions[name]` holds the label entries with paths resolved against `data_dir` (duration_frames as the
    label file gives it, else the file's length at sample_rate); a batch's `file_index` indexes that list.
    Batches: {"audio" [B, N], "target" [B], "file_index" [B], "chunk_index" [B]}.
    """

    def __init__(self, data_dir: str | Path, label_file: str | Path, config: RunConfig, classes: ClassConfig,
                 cache: bool = True, num_workers: int = 0):
        """The audio of one configuration.

        Args:
            data_dir: directory of the audio files the label file names.
            label_file: CSV of file names and labels (partitions from the parser, e.g. train_/devel_/test_ prefixes).
            config: the configuration (its label parser, preprocessing, batch size and seed).
            classes: the class config (label order).
            cache: keep decoded audio in memory, so later epochs decode nothing.
            num_workers: DataLoader worker processes.
        """
        super().__init__()
        self.data_dir = Path(data_dir)
        self.label_file = Path(label_file)
        self.config = config
        self.classes = classes
        self.cache = cache
        self.num_workers = num_workers
        self._partitions: dict[str, list[LabelEntry]] | None = None
        self._targets: dict[str, list[Any]] = {}
        self.datasets: dict[str, ChunkDataset] = {}

    @property
    def partitions(self) -> dict[str, list[LabelEntry]]:
        """Label entries of train/devel/test (parsed and checked on first use)."""
        if self._partitions is None:
            self._partitions = self._read_labels()
        return self._partitions

    def _read_labels(self) -> dict[str, list[LabelEntry]]:
        """Parse the label file, check that every file exists and every label is known."""
        if not self.data_dir.is_dir():
            raise DsplError(f"{self.data_dir}: data directory not found")
        parsed = parse_label_file(self.label_file, self.config.label_parser)
        check_files_exist([e for part in parsed for e in part], self.data_dir, self.label_file)
        partitions = {}
        for name, entries in zip(PARTITIONS, parsed):
            self._targets[name] = encode_targets(entries, self.classes, self.config.categorical, self.label_file)
            partitions[name] = [self._resolve(e) for e in entries]
        logger.info("%s: %s", self.label_file, ", ".join(f"{len(partitions[p])} {p}" for p in PARTITIONS))
        if not partitions["devel"]:
            logger.warning("%s: the devel partition is empty: training runs without validation", self.label_file)
        return partitions

    def _resolve(self, entry: LabelEntry) -> LabelEntry:
        """The entry with its path under data_dir; duration_frames from the header at sample_rate if absent."""
        path = self.data_dir / entry.path
        frames = entry.duration_frames
        if frames is None:
            frames = audio_frames(path, self.config.spec.sample_rate)
        return LabelEntry(path, entry.label, frames)

    def _order(self, name: str) -> list[int]:
        """File order of a partition's dataset: class up-sampled for categorical training data."""
        targets = self._targets[name]
        if name != "train" or not self.config.categorical or not targets:
            return list(range(len(targets)))
        before = class_counts(targets, self.classes.num_classes)
        order = upsample_indices(targets, self.classes.num_classes)
        after = class_counts([targets[i] for i in order], self.classes.num_classes)
        logger.info("class up-sampling of train: %s", ", ".join(
            f"{label} {b} -> {a}" for label, b, a in zip(self.classes.labels, before, after)))
        empty = [label for label, b in zip(self.classes.labels, before) if b == 0]
        if empty:
            logger.warning("%s: no training files for class(es) %s", self.label_file, ", ".join(empty))
        return order

    def _build(self, name: str) -> ChunkDataset:
        """The dataset of one partition, with a summary of padded files logged."""
        entries = self.partitions[name]
        order = self._order(name)
        dataset = ChunkDataset([entries[i].path for i in order], self.config.spec,
                               [self._targets[name][i] for i in order], regression=not self.config.categorical,
                               file_indices=order, cache=self.cache)
        if dataset.short_files:
            logger.warning("%s: %d file(s) shorter than one chunk (%d samples) were zero-padded to it: %s",
                           name, len(dataset.short_files), dataset.min_length,
                           first_few([p.name for p in dataset.short_files]))
        logger.info("%s: %d files, %d chunks", name, len(order), len(dataset))
        return dataset

    def setup(self, stage: str | None = None) -> None:
        """Build (and with the cache on, decode) the partitions a stage needs; all of them for None."""
        for name in STAGE_PARTITIONS.get(stage, PARTITIONS):
            if name not in self.datasets:
                self.datasets[name] = self._build(name)
                self.datasets[name].preload()

    def dataloader(self, name: str, shuffle: bool = False) -> DataLoader:
        """A loader over one partition ('train', 'devel', 'test'); shuffling is seeded by the configuration's seed."""
        if name not in self.datasets:
            self.datasets[name] = self._build(name)
        dataset = self.datasets[name]
        if name == "train" and len(dataset) == 0:
            raise DsplError(f"{self.label_file}: the train partition is empty (no file name starts with 'train')")
        generator = torch.Generator().manual_seed(self.config.training.seed) if shuffle else None
        batch_size = self.config.training.batch_size
        # BatchNorm cannot train on a batch of one: a last training batch of one chunk is left out of the epoch
        drop_last = name == "train" and len(dataset) > 1 and len(dataset) % batch_size == 1
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last,
                          collate_fn=collate_chunks, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("devel")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
