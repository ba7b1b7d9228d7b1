"""`devel-test` (dspl.workflows.evaluate): outputs recomputed from their own chunk CSVs and from first principles.

- the file-level decision is the majority vote of the chunk decisions, ties to the highest mean score;
- accuracy, f1_macro, UAR and the whole confusion matrix equal sklearn's; MAE, RMSE and CCC equal numpy formulas;
- a label parser named in a model file is never run.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import CLASS_DICT, model_grid, read_csv, run, spread_model_file, tiny_config, write_grid
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

import dspl
from dspl.config import ClassConfig, LabelParserRef
from dspl.data.audio import audio_frames
from dspl.data.chunking import num_chunks
from dspl.errors import DsplError
from dspl.models.predictor import FilePrediction
from dspl.workflows import evaluate
from dspl.workflows.evaluate import classification_metrics, majority_vote, regression_metrics

CLASSES = ClassConfig.from_dict({"a": "A", "b": "B", "c": "C"})


def prediction(rows: list[list[float]], classes: ClassConfig = CLASSES, source: str = "x.wav") -> FilePrediction:
    """A FilePrediction as the Predictor makes it: chunk decisions are the arg-max, scores the mean."""
    chunk_scores = np.asarray(rows, dtype=np.float64)
    scores = chunk_scores.mean(axis=0)
    return FilePrediction(source, [0.5 * i for i in range(len(rows))], chunk_scores, scores,
                          classes.labels[int(np.argmax(scores))],
                          [classes.labels[int(np.argmax(r))] for r in chunk_scores])


# --- majority vote ------------------------------------------------------------------------------------------------
def vote_of(p: FilePrediction) -> str:
    return majority_vote(p.chunk_decisions, p.scores, CLASSES.labels)


def test_majority_beats_the_first_chunk_and_the_mean_score():
    p = prediction([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    assert p.chunk_decisions == ["b", "a", "a"] and p.decision == "b"  # first chunk and mean both say b
    assert vote_of(p) == "a"


@pytest.mark.parametrize(("rows", "expected"), [
    # two-way tie a/b: the mean score of b is higher, though the first chunk says a
    ([[0.5, 0.4, 0.1], [0.1, 0.8, 0.1]], "b"),
    # the same tie, mean favouring a, first chunk b
    ([[0.1, 0.5, 0.4], [0.8, 0.1, 0.1]], "a"),
    # c and a tied with 2 votes each, b 1: a has the higher mean (0.46 against c's 0.32), the first chunk says c
    ([[0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.3, 0.6, 0.1]], "a"),
    # three-way tie: highest mean wins (c), first chunk a
    ([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.0, 0.1, 0.9]], "c"),
    # a tie between classes that are not first in the class config
    ([[0.1, 0.5, 0.4], [0.1, 0.3, 0.6], [0.2, 0.45, 0.35], [0.2, 0.35, 0.45]], "c"),
])
def test_ties_go_to_the_tied_class_with_the_highest_mean_score(rows, expected):
    assert vote_of(prediction(rows)) == expected


def test_a_tie_never_goes_to_a_class_outside_the_tie():
    # a and b tie with one vote each; c has the highest mean score but no vote
    p = FilePrediction("x.wav", [0.0, 0.5], np.array([[0.6, 0.0, 0.4], [0.0, 0.6, 0.4]]), np.array([0.2, 0.3, 0.5]),
                       "c", ["a", "b"])
    assert vote_of(p) == "b"


def test_one_chunk_votes_for_itself():
    assert vote_of(prediction([[0.1, 0.1, 0.8]])) == "c"


# --- metrics ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    classes = ClassConfig.from_dict({k: k.upper() for k in "abcd"})
    y_true = rng.integers(0, 4, 40).tolist()
    y_pred = [t if rng.random() < 0.5 else int(rng.integers(0, 3)) for t in y_true]  # class 3 rarely predicted
    metrics = classification_metrics(y_true, y_pred, classes)
    labels = [0, 1, 2, 3]
    assert metrics["cm"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert metrics["accuracy"] == pytest.approx(100 * accuracy_score(y_true, y_pred))
    assert metrics["f1_macro"] == pytest.approx(100 * f1_score(y_true, y_pred, labels=labels, average="macro",
                                                                 zero_division=0))
    assert metrics["uar"] == pytest.approx(100 * recall_score(y_true, y_pred, labels=labels, average="macro",
                                                              zero_division=0))
    assert metrics["count"] == 40 and metrics["labels"] == ["a", "b", "c", "d"]


def test_classification_metrics_by_hand():
    classes = ClassConfig.from_dict({"a": "A", "b": "B", "c": "C"})
    # true a a a b b c ; predicted a b a b c c
    metrics = classification_metrics([0, 0, 0, 1, 1, 2], [0, 1, 0, 1, 2, 2], classes)
    assert metrics["cm"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]  # rows: true class, columns: prediction
    assert metrics["accuracy"] == pytest.approx(100 * 4 / 6)
    assert metrics["uar"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 2 * 0.5 * 0.5 / 1.0, 2 * 0.5 * 1 / 1.5]  # precision a 1, b 1/2, c 1/2
    assert metrics["f1_macro"] == pytest.approx(100 * sum(f1) / 3)


@pytest.mark.parametrize(("y_pred", "uar", "f1"), [
    # class c neither true nor predicted: its recall and F1 count as 0 (sklearn's zero_division=0)
    ([0, 1, 1, 1], 100 * (0.5 + 1 + 0) / 3, 100 * (2 / 3 + 0.8 + 0) / 3),
    # class c predicted once but never true: recall 0 by zero_division, precision 0
    ([0, 2, 1, 1], 100 * (0.5 + 1 + 0) / 3, 100 * (2 / 3 + 1 + 0) / 3),
])
def test_a_class_absent_from_the_targets_counts_as_zero(y_pred, uar, f1):
    """A devel partition may lack a class; its undefined recall/F1 count as 0 in the macro averages."""
    y_true = [0, 0, 1, 1]
    metrics = classification_metrics(y_true, y_pred, CLASSES)
    assert metrics["uar"] == pytest.approx(uar)
    assert metrics["f1_macro"] == pytest.approx(f1)
    assert metrics["uar"] == pytest.approx(100 * recall_score(y_true, y_pred, labels=[0, 1, 2], average="macro",
                                                              zero_division=0))
    assert metrics["cm"][2] == [0, 0, 0]


def ccc(p: np.ndarray, y: np.ndarray) -> float:
    """Lin's (1989) concordance correlation coefficient, population (1/n) moments throughout."""
    cov = np.mean((p - p.mean()) * (y - y.mean()))
    return 2 * cov / (p.var() + y.var() + (p.mean() - y.mean()) ** 2)


def test_regression_metrics_equal_numpy_formulas():
    rng = np.random.default_rng(3)
    y = rng.random(25)
    p = 0.6 * y + 0.3 + 0.1 * rng.standard_normal(25)
    metrics = regression_metrics(y.tolist(), p.tolist())
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-12)
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-12)
    assert metrics["ccc"] == pytest.approx(ccc(p, y), rel=1e-6)
    assert metrics["count"] == 25
    perfect = regression_metrics([0.1, 0.5, 0.9], [0.1, 0.5, 0.9])
    assert (perfect["mae"], perfect["rmse"]) == (0.0, 0.0) and perfect["ccc"] == pytest.approx(1.0)


# --- devel-test with chosen chunk scores -----------------------------------------------------------------------
# per file: label and chunk scores (a, b, c) chosen so that vote, first chunk and mean-score decision differ
DEVEL = {
    "devel_000.wav": ("a", [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.5, 0.4, 0.1]]),            # vote a, first b, mean b
    "devel_001.wav": ("b", [[0.5, 0.4, 0.1], [0.1, 0.8, 0.1]]),                              # tie -> b, first a
    "devel_002.wav": ("c", [[0.1, 0.2, 0.7], [0.1, 0.2, 0.7], [0.9, 0.05, 0.05],
                            [0.9, 0.05, 0.05], [0.3, 0.6, 0.1]]),                              # tie -> a, first c
    "devel_003.wav": ("c", [[0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]),                              # c
}
TEST = {
    "test_000.wav": ("b", [[0.1, 0.5, 0.4], [0.1, 0.3, 0.6], [0.2, 0.45, 0.35], [0.2, 0.35, 0.45]]),  # tie -> c
    "test_001.wav": ("a", [[0.9, 0.05, 0.05]]),                                              # a
}
VOTES = {"devel_000.wav": "a", "devel_001.wav": "b", "devel_002.wav": "a", "devel_003.wav": "c",
         "test_000.wav": "c", "test_001.wav": "a"}


class ChosenPredictor:
    """Stands in for the loaded model: the chunk scores of each file are the ones chosen above."""

    def __init__(self, scores: dict[str, list[list[float]]]) -> None:
        self.scores = scores
        self.classes = CLASSES
        self.categorical = True

    def predict_files(self, paths):
        for path in paths:
            yield prediction(self.scores[Path(path).name], source=str(path))


def use_chosen_predictor(monkeypatch, scores: dict[str, list[list[float]]]) -> None:
    """devel-test scores with the ChosenPredictor instead of a model file's (a model whose labels the built-in
    parser reads)."""
    loaded = SimpleNamespace(config=SimpleNamespace(label_parser=LabelParserRef.builtin()))
    monkeypatch.setattr(evaluate, "load_model_file", lambda path, given: loaded)
    monkeypatch.setattr(evaluate, "Predictor", lambda model, batch_size=64: ChosenPredictor(scores))


@pytest.fixture
def chosen_evaluation(tmp_path, monkeypatch, write_sine):
    files = {**DEVEL, **TEST}
    for name in files:
        write_sine(tmp_path / "audio" / name, seconds=0.1)
    label_file = tmp_path / "labels.csv"
    label_file.write_text("filename,label\n" + "".join(f"{n},{label}\n" for n, (label, _) in files.items()))
    use_chosen_predictor(monkeypatch, {n: rows for n, (_, rows) in files.items()})
    results = evaluate.devel_test(tmp_path / "model" / "model.h5", tmp_path / "audio", label_file)
    return tmp_path / "model" / "evaluation", results


@pytest.mark.parametrize("partitions", [("devel",), ("test",), ()])
def test_devel_test_evaluates_the_partitions_the_label_file_has(tmp_path, monkeypatch, write_sine, caplog, partitions):
    files = {n: v for n, v in {**DEVEL, **TEST}.items() if n.split("_")[0] in partitions}
    files["train_000.wav"] = ("a", [[0.9, 0.05, 0.05]])
    for name in files:
        write_sine(tmp_path / "audio" / name, seconds=0.1)
    label_file = tmp_path / "labels.csv"
    label_file.write_text("filename,label\n" + "".join(f"{n},{label}\n" for n, (label, _) in files.items()))
    use_chosen_predictor(monkeypatch, {n: rows for n, (_, rows) in files.items()})
    model = tmp_path / "model" / "model.h5"
    if not partitions:
        with pytest.raises(DsplError, match="no devel or test entries"):
            evaluate.devel_test(model, tmp_path / "audio", label_file)
        return
    results = evaluate.devel_test(model, tmp_path / "audio", label_file)
    assert set(results) == set(partitions)
    assert sorted(p.name for p in (model.parent / "evaluation").iterdir()) == sorted(partitions)
    (missing,) = {"devel", "test"} - set(partitions)
    assert f"no {missing} entries: skipped" in caplog.text


def test_devel_test_names_absent_audio_files_before_evaluating(tmp_path, monkeypatch, write_sine):
    for name in ("devel_000.wav", "test_000.wav"):
        write_sine(tmp_path / "audio" / name, seconds=0.1)
    label_file = tmp_path / "labels.csv"
    label_file.write_text("filename,label\ndevel_000.wav,a\ndevel_001.wav,b\ntest_000.wav,b\n")
    use_chosen_predictor(monkeypatch, {n: rows for n, (_, rows) in {**DEVEL, **TEST}.items()})
    with pytest.raises(DsplError, match=r"names 1 audio file\(s\) absent from the data directory .*devel_001.wav"):
        evaluate.devel_test(tmp_path / "model" / "model.h5", tmp_path / "audio", label_file)
    assert not (tmp_path / "model" / "evaluation").exists()  # nothing half-written


def test_devel_test_grouped_decision_is_the_majority_vote(chosen_evaluation):
    out, _ = chosen_evaluation
    for partition, files in (("devel", DEVEL), ("test", TEST)):
        grouped = read_csv(out / partition / f"{partition}.grouped.predictions.csv")
        assert [r["filename"] for r in grouped] == list(files)
        assert {r["filename"]: r["prediction"] for r in grouped} == {n: VOTES[n] for n in files}
        assert {r["filename"]: r["label"] for r in grouped} == {n: label for n, (label, _) in files.items()}
        chunks = read_csv(out / partition / f"{partition}.chunks.predictions.csv")
        assert len(chunks) == sum(len(rows) for _, rows in files.values())
        # the vote recomputed from the chunk CSV: most frequent decision, ties to the highest mean score
        by_file = defaultdict(list)
        for row in chunks:
            by_file[row["filename"]].append(row)
        for name, rows in by_file.items():
            decisions = [r["prediction"] for r in rows]
            counts = {label: decisions.count(label) for label in CLASSES.labels}
            mean = {label: np.mean([float(r[f"prob_{label}"]) for r in rows]) for label in CLASSES.labels}
            best = max(counts.values())
            assert VOTES[name] == max((label for label in counts if counts[label] == best), key=mean.get)


def test_devel_test_metrics_equal_sklearn_on_chunks_and_files(chosen_evaluation):
    out, results = chosen_evaluation
    labels = list(CLASSES.labels)
    for partition, files in (("devel", DEVEL), ("test", TEST)):
        chunk_true = [labels.index(label) for label, rows in files.values() for _ in rows]
        chunk_pred = [int(np.argmax(r)) for _, rows in files.values() for r in rows]
        file_true = [labels.index(label) for label, _ in files.values()]
        file_pred = [labels.index(VOTES[n]) for n in files]
        for level, y, p in (("chunks", chunk_true, chunk_pred), ("grouped", file_true, file_pred)):
            metrics = json.loads((out / partition / f"{partition}.{level}.metrics.json").read_text())
            assert metrics == results[partition][level]
            assert metrics["cm"] == confusion_matrix(y, p, labels=[0, 1, 2]).tolist()
            assert metrics["accuracy"] == pytest.approx(100 * accuracy_score(y, p))
            assert metrics["f1_macro"] == pytest.approx(100 * f1_score(y, p, labels=[0, 1, 2], average="macro",
                                                                         zero_division=0))
            assert metrics["uar"] == pytest.approx(100 * recall_score(y, p, labels=[0, 1, 2], average="macro",
                                                                      zero_division=0))
            assert metrics["count"] == len(y)
    # the confusion-matrix PNGs show the matrix: blue cells (sklearn's display, "Blues"), not an empty frame
    from PIL import Image

    for level in ("chunks", "grouped"):
        pixels = np.asarray(Image.open(out / "devel" / f"devel.{level}.confusion_matrix.png").convert("RGB"), float)
        blue = (pixels[..., 2] - pixels[..., 0] > 60).mean()
        assert blue > 0.05, (level, blue)
    # devel files: a, b, c, c voted a, b, a, c -> 3 of 4 right, by hand
    devel = results["devel"]["grouped"]
    assert devel["cm"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]] and devel["accuracy"] == pytest.approx(75.0)


# --- devel-test with real models on the example set -----------------------------------------------------------
@pytest.fixture(scope="module")
def regression_model(tmp_path_factory, example_dir) -> Path:
    classes = json.loads((example_dir / "regression_class_config.json").read_text())
    hp = tiny_config("regression")
    return spread_model_file(tmp_path_factory.mktemp("regression") / "model.h5", hp, classes, gain=300.0)


def test_devel_test_on_the_regression_example_matches_numpy(regression_model, example_dir):
    result = run("devel-test", "-md", str(regression_model), "-d", str(example_dir / "audio"),
                 "-l", str(example_dir / "regression_label.csv"),
                 "-cc", str(example_dir / "regression_class_config.json"))
    assert result.exit_code == 0, result.output
    (target,) = json.loads((example_dir / "regression_class_config.json").read_text())
    labels = {r["filename"]: float(r["label"]) for r in read_csv(example_dir / "regression_label.csv")}
    for partition in ("devel", "test"):
        out = regression_model.parent / "evaluation" / partition
        chunks = read_csv(out / f"{partition}.chunks.predictions.csv")
        grouped = read_csv(out / f"{partition}.grouped.predictions.csv")
        assert {r["filename"] for r in grouped} == {n for n in labels if n.startswith(partition)}
        by_file = defaultdict(list)
        for row in chunks:
            assert float(row["label"]) == pytest.approx(labels[row["filename"]])
            assert float(row["prediction"]) == pytest.approx(float(row[f"value_{target}"]), abs=1e-6)
            by_file[row["filename"]].append(float(row[f"value_{target}"]))
        for row in grouped:  # a file's value is the mean of its chunks' values
            assert float(row["prediction"]) == pytest.approx(np.mean(by_file[row["filename"]]), abs=2e-6)
        levels = {"chunks": (np.array([float(r["prediction"]) for r in chunks]),
                             np.array([labels[r["filename"]] for r in chunks])),
                  "grouped": (np.array([float(r["prediction"]) for r in grouped]),
                              np.array([labels[r["filename"]] for r in grouped]))}
        for level, (p, y) in levels.items():
            metrics = json.loads((out / f"{partition}.{level}.metrics.json").read_text())
            assert p.std() > 1e-3  # predictions vary, so the CCC is a real check
            assert metrics["count"] == len(y)
            assert metrics["mae"] == pytest.approx(np.mean(np.abs(p - y)), abs=2e-6)
            assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), abs=2e-6)
            assert metrics["ccc"] == pytest.approx(ccc(p, y), abs=1e-4)


def test_devel_test_writes_metrics_that_match_sklearn(trained_model, example_dir, tmp_path):
    hp_config = model_grid(trained_model, tmp_path / "hp.json")
    result = run("devel-test", "-md", str(trained_model), "-d", str(example_dir / "audio"),
                 "-l", str(example_dir / "label.csv"), "-hc", str(hp_config),
                 "-cc", str(example_dir / "class_config.json"))
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output  # the classification report
    folder = trained_model.parent
    assert [line for line in result.output.splitlines() if line][-2:] == [
        f"evaluation: {folder / 'evaluation'}", f"report: {folder / 'report' / 'index.html'}"]
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


# --- a model file carries data, never code --------------------------------------------------------------------
EVIL_PARSER = '''
from pathlib import Path
from typing import Callable
Path(__file__).with_name("ran.txt").write_text("the model's parser ran")
from dspl.data.parsers import ComParEParser as Evil
'''


def test_devel_test_never_imports_a_parser_named_in_the_model_file(tmp_path, write_sine, write_labels, caplog):
    hp = tiny_config(label_parser="evil.py:Evil")
    model = spread_model_file(tmp_path / "model" / "model.h5", hp, CLASS_DICT)
    (tmp_path / "evil.py").write_text(EVIL_PARSER)
    write_sine(tmp_path / "audio" / "devel_a.wav", seconds=1.5)
    labels = write_labels(tmp_path / "labels.csv", [("devel_a.wav", "low", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        result = run("devel-test", "-md", str(model), "-d", str(tmp_path / "audio"), "-l", str(labels))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "ran.txt").exists()
    assert (f"{model} names the label parser 'evil.py:Evil': dspl runs no code named in a model file and reads the "
            "labels with the built-in ComParE parser (give your hp config with -hc to use that parser)"
            in caplog.messages)
    assert (model.parent / "evaluation" / "devel" / "devel.chunks.metrics.json").is_file()


def test_a_parser_of_the_users_own_config_says_which_file_it_runs(tmp_path, write_sine, write_labels, caplog):
    hp = tiny_config(label_parser="evil.py:Evil")
    model = spread_model_file(tmp_path / "model" / "model.h5", hp, CLASS_DICT)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "evil.py").write_text(EVIL_PARSER)
    hp_file = write_grid(config_dir / "hp.json", hp)
    write_sine(tmp_path / "audio" / "devel_a.wav", seconds=1.5)
    labels = write_labels(tmp_path / "labels.csv", [("devel_a.wav", "low", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        result = run("devel-test", "-md", str(model), "-d", str(tmp_path / "audio"), "-l", str(labels),
                     "-hc", str(hp_file))
    assert result.exit_code == 0, result.output
    assert (config_dir / "ran.txt").is_file()
    assert f"label_parser 'evil.py:Evil': running the Python code of {config_dir / 'evil.py'}" in caplog.messages
