"""`predict`: score every audio file under a directory with one or more models; DeepSpectrumLite's CSV layout."""

from __future__ import annotations

import csv
import glob
import io
import logging
import os
from pathlib import Path

from rich.progress import Progress

from dspl.config import GivenConfigs
from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.files import clean_stale, exclusive_lock, prepare_output_dir, write_atomically
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models.predictor import FilePrediction, Predictor

logger = logging.getLogger(__name__)

MODEL_FILE = "model.h5"


def expand_model_paths(pattern: str | Path) -> list[Path]:
    """The model files a path or glob names (sorted); DsplError if it names none."""
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    if not matches:
        raise DsplError(f"{pattern}: no model file found")
    return matches


def score_columns(predictor: Predictor) -> list[str]:
    """`prob_<class>` per class for categorical models, `value_<target>` for regression."""
    prefix = "prob_" if predictor.categorical else "value_"
    return [prefix + label for label in predictor.classes.labels]


def chunk_rows(prediction: FilePrediction, name: str) -> list[list]:
    """One CSV row per chunk: filename, start time, scores, decision."""
    return [[name, f"{t:.3f}", *(f"{s:.6f}" for s in scores), decision]
            for t, scores, decision in zip(prediction.times, prediction.chunk_scores, prediction.chunk_decisions)]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a CSV file atomically (readers never see half of it), creating its directory."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    write_atomically(path, text.getvalue().encode("utf-8"))


def predictions_dir(model_file: Path) -> Path:
    """Where predict writes a model's CSVs: DeepSpectrumLite's `<dir>/test/test` for `model.h5`, and
    `<dir>/test/<file name>` for any other model file, so that model.h5 and model.ckpt of one folder never
    overwrite each other's predictions."""
    return model_file.parent / "test" / ("test" if model_file.name == MODEL_FILE else model_file.name)


def predict(model_path: str | Path, data_dir: str | Path, given: GivenConfigs = NO_CONFIGS,
            batch_size: int = 64) -> list[Path]:
    """Predict every audio file under data_dir with each model the path/glob names (``given``: the configs given
    with -hc/-cc, checked against a dspl model's own, the configs of a DeepSpectrumLite Keras model).

    Writes `test.chunks.predictions.csv` (filename,time,prob_<class>…,prediction) and
    `test.grouped.predictions.csv` (per file: mean scores over its chunks and the decision) into
    predictions_dir(model file), atomically; one run at a time per folder (a second one is refused). A file that
    cannot be decoded is skipped and listed in a warning. Returns the chunk-level CSV paths.
    """
    files = find_audio_files(data_dir)
    root = Path(data_dir) if Path(data_dir).is_dir() else Path(os.path.commonpath([p.parent for p in files]))
    names = {str(p): str(p.relative_to(root)) for p in files}
    written = []
    for model_file in expand_model_paths(model_path):
        predictor = Predictor(load_model_file(model_file, given), batch_size=batch_size)
        out_dir = prepare_output_dir(predictions_dir(model_file), "predictions folder")
        with exclusive_lock(out_dir / ".dspl-predict.lock", f"another dspl predict with {model_file}"):
            clean_stale(out_dir)
            chunks, grouped, skipped = [], [], []
            with Progress(transient=True) as progress:
                task = progress.add_task(f"predict {model_file.parent.name}", total=len(files))
                for prediction in predictor.predict_files(files, skipped):
                    name = names[prediction.source]
                    chunks.extend(chunk_rows(prediction, name))
                    grouped.append([name, *(f"{s:.6f}" for s in prediction.scores), prediction.decision])
                    progress.update(task, completed=len(grouped) + len(skipped))
            if skipped:
                logger.warning("%s: skipped %d of %d file(s) that cannot be decoded: %s", model_file, len(skipped),
                               len(files), "; ".join(skipped))
            if not grouped:
                raise DsplError(f"{data_dir}: none of its {len(files)} audio file(s) could be decoded: {skipped[0]}")
            columns = score_columns(predictor)
            write_csv(out_dir / "test.chunks.predictions.csv", ["filename", "time", *columns, "prediction"], chunks)
            write_csv(out_dir / "test.grouped.predictions.csv", ["filename", *columns, "prediction"], grouped)
        logger.info("%s: %d files, %d chunks -> %s", model_file, len(grouped), len(chunks), out_dir)
        written.append(out_dir / "test.chunks.predictions.csv")
    return written
