"""The inputs of an export: raw chunks and their plots for calibration and verification, from what the user named.

Calibration/verification audio comes from ``calibration_data`` (a directory of audio files: alternate chunks
calibrate and verify), or ``data_dir`` + ``label_file`` (the train partition calibrates, the devel partition
verifies); without either, float exports are verified on synthetic tones (and int8 is refused by the options).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from dspl.config import ClassConfig, RunConfig
from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.export import calibration
from dspl.spec import PreprocessingSpec

log = logging.getLogger(__name__)


@dataclass
class ExportInputs:
    """Raw chunks and model inputs (NCHW) for calibration and for verification.

    ``num_samples`` is the input length of the preprocessor and end-to-end models: the chunk length, a whole-file
    configuration's fixed length, or 0 (any length: the verification chunks then differ in length).
    """

    verify_chunks: list[torch.Tensor]
    verify_plots: np.ndarray
    num_samples: int
    calibration_plots: np.ndarray | None = None
    source: str = "synthetic tones"


@dataclass(frozen=True)
class InputSources:
    """Where calibration and verification audio comes from (see the module docstring), how many chunks to draw,
    and a whole-file model's fixed input length in seconds (None: any length where TFLite can, else the longest
    calibration file)."""

    calibration_data: Path | None = None
    data_dir: Path | None = None
    label_file: Path | None = None
    max_chunks: int = calibration.MAX_CHUNKS
    whole_file_seconds: float | None = None

    def check(self) -> None:
        """A DsplError for a data directory without its label file, or a label file without its directory."""
        if self.calibration_data is None and self.data_dir is not None and self.label_file is None:
            raise DsplError(f"{self.data_dir}: calibration from a data directory also needs its label file (-l), "
                            "or pass the directory as --calibration-data")
        if self.calibration_data is None and self.label_file is not None and self.data_dir is None:
            raise DsplError(f"{self.label_file}: calibration from a label file also needs the data directory (-d)")

    @property
    def real_audio(self) -> bool:
        """Whether calibration audio was named (full-int8 quantisation needs it)."""
        return self.calibration_data is not None or self.label_file is not None


def gather_inputs(config: RunConfig, classes: ClassConfig, sources: InputSources) -> ExportInputs:
    """Chunks and plots for calibration and verification from the sources the user named."""
    sources.check()
    spec, max_chunks = config.spec, sources.max_chunks
    if sources.calibration_data is not None:
        files = find_audio_files(sources.calibration_data)
        samples = _input_samples(spec, sources.whole_file_seconds, files)
        pool = calibration.sample_chunks(files, spec, 2 * max_chunks, num_samples=samples)
        calib, held_out, source = pool[0::2], pool[1::2], f"audio under {sources.calibration_data}"
        if not len(held_out):
            held_out = calib
    elif sources.label_file is not None:
        train = calibration.partition_files(config, classes, sources.data_dir, sources.label_file, "train")
        samples = _input_samples(spec, sources.whole_file_seconds, train)
        calib = calibration.sample_chunks(train, spec, max_chunks, num_samples=samples)
        devel = calibration.partition_files(config, classes, sources.data_dir, sources.label_file, "devel")
        held_out = calibration.sample_chunks(devel, spec, max_chunks, seed=1, num_samples=samples) if devel else calib
        source = f"train/devel partitions of {sources.label_file}"
    else:
        samples = _input_samples(spec, sources.whole_file_seconds, [])
        synthetic = calibration.synthetic_chunks(spec, num_samples=samples)
        return ExportInputs(synthetic, calibration.make_plots(spec, synthetic), samples)
    return ExportInputs(held_out, calibration.make_plots(spec, held_out), samples,
                        calibration.make_plots(spec, calib), source)


def _input_samples(spec: PreprocessingSpec, whole_file_seconds: float | None, files: Sequence[Path]) -> int:
    """The preprocessor's input length (see ExportInputs.num_samples); a fixed whole-file length defaults to the
    longest of ``files``."""
    if spec.whole_file and whole_file_seconds is None and not spec.dynamic_length_resize():
        if not files:
            raise DsplError(f"resize_method: value '{spec.resize_method}' (anti_alias "
                            f"{str(spec.anti_alias).lower()}): a whole-file model exports at a fixed input length: "
                            "pass --whole-file-seconds, or calibration audio to take its longest file")
        whole_file_seconds = calibration.longest_file_seconds(files, spec)
        log.info("whole-file exports take %.3f s of audio (the longest calibration file)", whole_file_seconds)
    return spec.input_samples(whole_file_seconds)
