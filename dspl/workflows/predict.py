"""`predict`: score every audio file under a directory with one or more models; DeepSpectrumLite's CSV layout."""

from __future__ import annotations

import csv
import glob
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from dspl.config import GivenConfigs
from dspl.data.audio import find_audio_files
from dspl.errors import DsplError
from dspl.files import clean_stale, exclusive_lock, prepare_output_dir, write_atomically
from dspl.loading import NO_CONFIGS, load_model_file
from dspl.models.predictor import FilePrediction, Predictor
from dspl.workflows.progress import progress_bar

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


@dataclass
class ModelPredictions:
    """What predict wrote for one model: its CSVs, the score columns and one row per file (name, scores,
    decision), in file order."""

    model_file: Path
    chunks_csv: Path
    grouped_csv: Path
    columns: list[str]
    files: list[tuple[str, list[float], str | float]] = field(default_factory=list)


def predict(model_path: str | Path, data_dir: str | Path, given: GivenConfigs = NO_CONFIGS,
            batch_size: int = 64, out_dir: str | Path | None = None) -> list[ModelPredictions]:
    """Predict every audio file under data_dir with each model the path/glob names (``given``: the configs given
    with -hc/-cc, checked against a dspl model's own, the configs of a DeepSpectrumLite Keras model).

    Writes `test.chunks.predictions.csv` (filename,time,prob_<class>…,prediction) and
    `test.grouped.predictions.csv` (per file: mean scores over its chunks and the decision) into ``out_dir``
    (one model) or predictions_dir(model file), atomically, saying when they replace an earlier run's; one run at a
    time per folder (a second one is refused). A file that cannot be decoded is skipped and listed in a warning.
    """
    files = find_audio_files(data_dir)
    root = Path(data_dir) if Path(data_dir).is_dir() else Path(os.path.commonpath([p.parent for p in files]))
    names = {str(p): str(p.relative_to(root)) for p in files}
    models = expand_model_paths(model_path)
    if out_dir is not None and len(models) > 1:
        raise DsplError(f"{model_path}: names {len(models)} models; -o takes the predictions of one")
    results = []
    for model_file in models:
        predictor = Predictor(load_model_file(model_file, given), batch_size=batch_size)
        folder = prepare_output_dir(predictions_dir(model_file) if out_dir is None else out_dir, "predictions folder")
        result = _predict_into(predictor, model_file, data_dir, files, names, folder)
        logger.info("%s: %d files -> %s", model_file, len(result.files), folder)
        results.append(result)
    return results


def _predict_into(predictor: Predictor, model_file: Path, data_dir: str | Path, files: list[Path],
                  names: dict[str, str], out_dir: Path) -> ModelPredictions:
    """Score the files with one model and write its two CSVs into out_dir (one run at a time)."""
    columns = score_columns(predictor)
    result = ModelPredictions(model_file, out_dir / "test.chunks.predictions.csv",
                              out_dir / "test.grouped.predictions.csv", columns)
    with exclusive_lock(out_dir / ".dspl-predict.lock", f"another dspl predict with {model_file}"):
        clean_stale(out_dir)
        chunks, skipped = [], []
        with progress_bar() as progress:
            task = progress.add_task(f"predict {model_file.parent.name}", total=len(files))
            for prediction in predictor.predict_files(files, skipped):
                name = names[prediction.source]
                chunks.extend(chunk_rows(prediction, name))
                result.files.append((name, [float(s) for s in prediction.scores], prediction.decision))
                progress.update(task, completed=len(result.files) + len(skipped))
        if skipped:
            logger.warning("%s: skipped %d of %d file(s) that cannot be decoded: %s", model_file, len(skipped),
                           len(files), "; ".join(skipped))
        if not result.files:
            raise DsplError(f"{data_dir}: none of its {len(files)} audio file(s) could be decoded: {skipped[0]}")
        grouped = [[name, *(f"{s:.6f}" for s in scores), decision] for name, scores, decision in result.files]
        _say_what_is_replaced(result.grouped_csv, grouped)
        write_csv(result.chunks_csv, ["filename", "time", *columns, "prediction"], chunks)
        write_csv(result.grouped_csv, ["filename", *columns, "prediction"], grouped)
    return result


def _say_what_is_replaced(grouped_csv: Path, rows: list[list]) -> None:
    """Warn when the CSVs replace an earlier run's predictions of other files (DeepSpectrumLite's fixed folder)."""
    if not grouped_csv.is_file():
        return
    with grouped_csv.open(newline="", encoding="utf-8") as f:
        earlier = {row[0] for row in list(csv.reader(f))[1:] if row}
    gone = earlier - {row[0] for row in rows}
    if gone:
        logger.warning("%s: replacing the predictions of an earlier run, whose %d file(s) this run does not "
                       "score (e.g. %s); -o chooses another folder", grouped_csv.parent, len(gone), sorted(gone)[0])
