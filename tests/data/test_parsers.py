"""Label parsers (dspl.data.parsers): the built-in ComParE CSV, lookup of the parser by name, custom
file.py:Class parsers; malformed label files, duplicates and paths that leave the data folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from helpers import error_message, grid_file, one_error_line, run, train_args, without_blocking

from dspl.config import ClassConfig, LabelParserRef, RunConfig
from dspl.data.datamodule import AudioDataModule
from dspl.data.example import example_hp
from dspl.data.parsers import (
    ComParEParser,
    LabelEntry,
    LabelParser,
    encode_targets,
    parse_label_file,
    parser_class,
)
from dspl.errors import DsplError

CUSTOM_PARSER = '''
from pathlib import Path

from dspl.data.parsers import LabelEntry, LabelParser
from helper import PREFIXES


class TabParser(LabelParser):
    """Tab-separated `partition<TAB>file<TAB>label` lines."""

    def parse_labels(self):
        parts = {p: [] for p in PREFIXES}
        for line in Path(self._file_path).read_text().splitlines():
            partition, name, label = line.split("\\t")
            parts[partition].append(LabelEntry(Path(name), label))
        return parts["train"], parts["devel"], parts["test"]
'''
RECORDS_PARSER = '''
class Records:
    """Stands in for a pandas DataFrame (DeepSpectrumLite parsers returned those)."""

    def __init__(self, rows):
        self.rows = rows

    def to_dict(self, orient):
        assert orient == "records"
        return self.rows


class LegacyParser:
    def __init__(self, file_path):
        self._file_path = file_path

    def parse_labels(self):
        row = {"filename": "a.wav", "label": "yes", "duration_frames": 16000.0}
        return Records([row]), Records([]), [("b.wav", "no")]
'''


def test_compare_parser_partitions_by_prefix(tmp_path, write_labels, caplog):
    path = write_labels(tmp_path / "label.csv", [
        ("train_1.wav", "a", 100), ("devel_1.wav", "b", 200), ("train_2.wav", "b", 300),
        ("test_1.wav", "a", 400), ("other.wav", "a", 5), ("sub/train_3.wav", "a", 6)])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        train, devel, test = ComParEParser(path).parse_labels()
    assert train == [LabelEntry(Path("train_1.wav"), "a", 100), LabelEntry(Path("train_2.wav"), "b", 300),
                     LabelEntry(Path("sub/train_3.wav"), "a", 6)]
    assert devel == [LabelEntry(Path("devel_1.wav"), "b", 200)]
    assert test == [LabelEntry(Path("test_1.wav"), "a", 400)]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: ignored 1 row(s) whose file name starts with none of train/devel/test: other.wav"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):  # read again (a configuration's report)
        ComParEParser(path).parse_labels()
    assert caplog.records == []  # said once


def test_duration_frames_is_optional(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a"), ("test_1.wav", "b")], header="filename,label")
    train, devel, test = ComParEParser(path).parse_labels()
    assert train == [LabelEntry(Path("train_1.wav"), "a", None)] and devel == [] and len(test) == 1


@pytest.mark.parametrize("spec", ["../lib/data/parser/ComParEParser.py:ComParEParser", "ComParEParser", "compare",
                                  "lib/data/parser/ComParEParser.py:ComParEParser"])
def test_builtin_names(spec, tmp_path):
    assert parser_class(LabelParserRef.resolve(spec, [tmp_path])) is ComParEParser


def test_custom_parser_is_loaded_relative_to_the_config_dir(tmp_path, write_sine, monkeypatch):
    config_dir = tmp_path / "configs"
    (config_dir / "parsers").mkdir(parents=True)
    (config_dir / "parsers" / "tab.py").write_text(CUSTOM_PARSER)
    (config_dir / "parsers" / "helper.py").write_text('PREFIXES = ("train", "devel", "test")\n')
    labels = tmp_path / "labels.tsv"
    labels.write_text("train\tx.wav\tyes\ntrain\ty.wav\tno\ndevel\tz.wav\tyes\n")
    for name in "xyz":
        write_sine(tmp_path / "audio" / f"{name}.wav", seconds=0.5)
    monkeypatch.chdir(tmp_path)  # not the config dir: the file is found through hp_source_dir

    parser = parser_class(LabelParserRef.resolve("parsers/tab.py:TabParser", [config_dir, Path.cwd()]))
    assert issubclass(parser, LabelParser) and parser.__name__ == "TabParser"
    config = RunConfig.from_dict({**example_hp(), "label_parser": "parsers/tab.py:TabParser"}, "test",
                                 lambda text: LabelParserRef.resolve(text, [config_dir, Path.cwd()]))
    dm = AudioDataModule(tmp_path / "audio", labels, config, ClassConfig(("yes", "no"), ("Yes", "No")))
    assert [e.path.name for e in dm.partitions["train"]] == ["x.wav", "y.wav"]
    assert dm.partitions["train"][0].path == tmp_path / "audio" / "x.wav"
    assert [e.label for e in dm.partitions["devel"]] == ["yes"] and dm.partitions["test"] == []


def test_custom_parser_falls_back_to_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "legacy.py").write_text(RECORDS_PARSER)
    (tmp_path / "labels.csv").write_text("anything\n")
    monkeypatch.chdir(tmp_path)
    train, devel, test = parse_label_file(tmp_path / "labels.csv", LabelParserRef.resolve(
        "legacy.py:LegacyParser", [tmp_path / "elsewhere", Path.cwd()]))
    assert train == [LabelEntry(Path("a.wav"), "yes", 16000)]
    assert devel == [] and test == [LabelEntry(Path("b.wav"), "no", None)]


def test_missing_parser_file(tmp_path):
    with pytest.raises(DsplError) as error:
        parser_class(LabelParserRef.resolve("nope.py:Parser", [tmp_path / "cfg", tmp_path]))
    assert str(error.value) == (f"label_parser 'nope.py:Parser': file nope.py not found "
                                f"(looked in: {tmp_path / 'cfg'}, {tmp_path})")


def test_missing_parser_class(tmp_path):
    (tmp_path / "p.py").write_text("class Other:\n    pass\n")
    with pytest.raises(DsplError) as error:
        parser_class(LabelParserRef.resolve("p.py:Parser", [tmp_path]))
    assert str(error.value) == f"label_parser 'p.py:Parser': {tmp_path / 'p.py'} defines no class 'Parser'"


def test_parser_file_that_fails_to_import(tmp_path):
    (tmp_path / "p.py").write_text("1 / 0\n")
    with pytest.raises(DsplError, match=r"^label_parser 'p.py:P': importing .*p\.py failed: "
                                        r"ZeroDivisionError: division by zero$"):
        parser_class(LabelParserRef.resolve("p.py:P", [tmp_path]))


def test_parser_spec_without_class(tmp_path):
    with pytest.raises(DsplError) as error:
        parser_class(LabelParserRef.resolve("myparser", [tmp_path]))
    assert str(error.value) == "label_parser 'myparser': expected 'path/to/file.py:ClassName' or 'ComParEParser'"


def test_failing_parse_labels_is_one_clear_error(tmp_path):
    (tmp_path / "p.py").write_text("class P:\n    def __init__(self, f):\n        pass\n"
                                   "    def parse_labels(self):\n        raise KeyError('label')\n")
    (tmp_path / "l.csv").write_text("x\n")
    with pytest.raises(DsplError) as error:
        parse_label_file(tmp_path / "l.csv", LabelParserRef.resolve("p.py:P", [tmp_path]))
    assert str(error.value) == f"label_parser 'p.py:P': parsing {tmp_path / 'l.csv'} failed: KeyError: 'label'"


def test_regression_targets_are_numbers():
    entries = [LabelEntry(Path("train_1.wav"), "0.25"), LabelEntry(Path("train_2.wav"), 1)]
    assert encode_targets(entries, ClassConfig(("r",), ("R",)), False, "l.csv") == [0.25, 1.0]
    with pytest.raises(DsplError) as error:
        encode_targets([LabelEntry(Path("train_3.wav"), "high")], ClassConfig(("r",), ("R",)), False, "l.csv")
    assert str(error.value) == "l.csv: train_3.wav: regression label 'high' is not a finite number"


def test_categorical_targets_are_class_indices():
    classes = ClassConfig(("a", "b"), ("A", "B"))
    entries = [LabelEntry(Path("x.wav"), "b"), LabelEntry(Path("y.wav"), "a")]
    assert encode_targets(entries, classes, True, "l.csv") == [1, 0]


# --- bad label files: one DsplError naming the file and what is expected -------------------------------------
def test_label_file_missing(tmp_path):
    path = tmp_path / "label.csv"
    assert error_message(ComParEParser(path).parse_labels) == f"{path}: label file not found"


def test_label_csv_with_missing_columns(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a")], header="file,label")
    assert error_message(ComParEParser(path).parse_labels) == (
        f"{path}: missing column(s) filename: expected the header filename,label[,duration_frames], "
        f"found file,label")


def test_label_csv_row_with_wrong_field_count(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", 3), ("train_2.wav", "b")])
    assert error_message(ComParEParser(path).parse_labels) == (
        f"{path}: line 3: expected 3 fields (filename,label,duration_frames), found 2")


def test_label_csv_with_bad_duration(tmp_path, write_labels):
    path = write_labels(tmp_path / "label.csv", [("train_1.wav", "a", "long")])
    assert error_message(ComParEParser(path).parse_labels) == (
        f"{path}: line 2: duration_frames 'long' is not a non-negative integer")


def test_empty_label_file(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("\n")
    assert error_message(ComParEParser(path).parse_labels) == (
        f"{path}: label file is empty, expected a header line filename,label,duration_frames")


def test_label_file_duplicates_are_reported(tmp_path, write_labels, caplog):
    from dspl.config import LabelParserRef
    from dspl.data.parsers import parse_label_file

    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", ""), ("train_a.wav", "low", ""),
                                                    ("devel_b.wav", "high", "")])
    with caplog.at_level(logging.WARNING, logger="dspl.data.parsers"):
        train, devel, _ = parse_label_file(labels, LabelParserRef.builtin())
    assert [e.path.name for e in train] == ["train_a.wav"] and len(devel) == 1
    assert caplog.messages == [f"{labels}: 1 repeated row(s) ignored (each file counts once): train_a.wav"]

    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", ""), ("train_a.wav", "high", "")])
    with pytest.raises(DsplError) as error:
        parse_label_file(labels, LabelParserRef.builtin())
    assert str(error.value) == (f"{labels}: train_a.wav has two labels, 'low' and 'high': expected one label per "
                                "file")


@pytest.mark.parametrize("name", ["../outside.wav", "/tmp/outside.wav", "sub/../../outside.wav"])
def test_label_paths_leaving_the_data_folder_are_refused(tmp_path, write_sine, write_labels, name):
    from dspl.data.parsers import LabelEntry, check_files_exist

    with pytest.raises(DsplError) as error:
        check_files_exist([LabelEntry(Path(name), "low")], tmp_path / "audio", tmp_path / "labels.csv")
    assert str(error.value) == (f"{tmp_path / 'labels.csv'}: file name '{Path(name)}' leaves the data directory "
                                f"{tmp_path / 'audio'}: expected a path relative to it, inside it")


@pytest.mark.parametrize("body, failure", [
    ("import sys\n        sys.exit(0)", "it called sys.exit(0), expected it to return"),
    ("raise SystemExit('no labels')", "it called sys.exit('no labels'), expected it to return"),
    ("raise KeyboardInterrupt", "it raised KeyboardInterrupt (or Ctrl-C was pressed)"),
])
def test_a_parser_that_exits_or_interrupts_is_reported_as_such(tmp_path, body, failure):
    (tmp_path / "p.py").write_text("class P:\n    def __init__(self, f):\n        pass\n"
                                   f"    def parse_labels(self):\n        {body}\n")
    (tmp_path / "l.csv").write_text("x\n")
    with pytest.raises(DsplError) as error:
        parse_label_file(tmp_path / "l.csv", LabelParserRef.resolve("p.py:P", [tmp_path]))
    assert str(error.value) == f"label_parser 'p.py:P': parsing {tmp_path / 'l.csv'} failed: {failure}"
    (tmp_path / "q.py").write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(DsplError) as error:
        parser_class(LabelParserRef.resolve("q.py:Q", [tmp_path]))
    assert str(error.value) == (f"label_parser 'q.py:Q': importing {tmp_path / 'q.py'} failed: it called sys.exit(3), "
                                "expected it to return")


def test_train_with_a_parser_that_calls_sys_exit_is_one_line_and_writes_no_model(example_dir, tmp_path):
    (tmp_path / "p.py").write_text("import sys\n\nclass P:\n    def __init__(self, f):\n        pass\n\n"
                                   "    def parse_labels(self):\n        sys.exit(0)\n")
    hp_file = grid_file(tmp_path / "hp.json", 1, [0.001])
    grid = json.loads(hp_file.read_text())
    grid["label_parser"] = ["p.py:P"]
    hp_file.write_text(json.dumps(grid))
    one_error_line(run(*train_args(example_dir, tmp_path / "out", hp_file)),
                   f"label_parser 'p.py:P': parsing {example_dir / 'label.csv'} failed: it called sys.exit(0), "
                   "expected it to return")
    assert not list((tmp_path / "out").rglob("model.h5"))


@pytest.mark.parametrize("spelling", ["sub/../train_a.wav", "sub/./../train_a.wav", "./sub/../train_a.wav"])
def test_one_file_named_in_two_spellings_is_an_error_naming_both_lines(tmp_path, write_labels, spelling):
    labels = write_labels(tmp_path / "labels.csv", [("train_a.wav", "low", ""), ("devel_b.wav", "high", ""),
                                                    (spelling, "low", "")])
    with pytest.raises(DsplError) as error:
        parse_label_file(labels, LabelParserRef.builtin())
    assert str(error.value) == (f"{labels}: 'train_a.wav' (line 2) and '{Path(spelling)}' (line 4) name the same "
                                "file: expected each file once")


@pytest.mark.parametrize("make, kind", [(os.mkfifo, "a named pipe (FIFO)"), (os.mkdir, "a directory")])
def test_a_label_file_that_is_not_a_regular_file_is_refused_before_it_is_opened(tmp_path, make, kind):
    path = tmp_path / "label.csv"
    make(path)
    for read in (lambda: parse_label_file(path, LabelParserRef.builtin()), ComParEParser(path).parse_labels):
        with pytest.raises(DsplError) as error:
            without_blocking(path, read)
        assert str(error.value) == f"{path}: is {kind}, expected a regular file (label file)"


def test_a_named_pipe_in_place_of_an_audio_file_of_the_label_file_is_named(tmp_path, write_sine):
    from dspl.data.parsers import check_files_exist

    write_sine(tmp_path / "audio" / "train_a.wav")
    os.mkfifo(tmp_path / "audio" / "train_b.wav")
    entries = [LabelEntry(Path("train_a.wav"), "low"), LabelEntry(Path("train_b.wav"), "high")]
    with pytest.raises(DsplError) as error:
        check_files_exist(entries, tmp_path / "audio", tmp_path / "labels.csv")
    assert str(error.value) == (f"{tmp_path / 'audio' / 'train_b.wav'}: is a named pipe (FIFO), expected a regular "
                                "file (audio file)")


def test_an_absent_file_is_named_on_one_line_with_a_hint_where_only_its_unicode_form_differs(tmp_path, write_sine):
    import unicodedata

    from dspl.data.parsers import check_files_exist

    composed = unicodedata.normalize("NFC", "test_é01.wav")
    write_sine(tmp_path / "audio" / composed)  # as most file systems and editors write it
    entries = [LabelEntry(Path(unicodedata.normalize("NFD", composed)), "low"),  # as a macOS export may spell it
               LabelEntry(Path("test_a\nb.wav"), "high")]  # a newline quoted into a CSV field
    with pytest.raises(DsplError) as error:
        check_files_exist(entries, tmp_path / "audio", tmp_path / "labels.csv")
    decomposed = unicodedata.normalize("NFD", composed)
    assert str(error.value) == (
        f"{tmp_path / 'labels.csv'}: names 2 audio file(s) absent from the data directory {tmp_path / 'audio'}: "
        f"{decomposed}, test_a\\nb.wav; {decomposed}: the data directory has a file of the same letters in another "
        "Unicode form (composed or decomposed accents): spell them alike")
