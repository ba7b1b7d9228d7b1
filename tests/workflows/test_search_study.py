"""The shared study of `dspl search` without training: storages, the queue of trials, one command per study,
sampling inside the space, stale workers' trials retried, and the summary files. Two storage objects on one
journal file are two workers, as two processes are."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from helpers import read_csv
from optuna.trial import TrialState

from dspl.config import parse_space
from dspl.data.example import example_hp
from dspl.errors import DsplError
from dspl.workflows.search_study import SURPLUS_ATTR, SearchCommand, open_storage, open_study, take_trial
from dspl.workflows.search_summary import Budget, SearchInfo, TrialRow, best_row, read_summary, write_summary
from dspl.workflows.search_trial import suggest
from dspl.workflows.search_workers import (
    HEARTBEAT_ATTR,
    RETRY_OF,
    WORKER_ATTR,
    Heartbeat,
    Worker,
    release_stale_trials,
    stale_reason,
)

SPACE = parse_space({**{key: [value] for key, value in example_hp().items()},
                     "basemodel_name": ["test_efficientnet", "test_vit", "resnet10t"],
                     "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                     "image_width": {"low": 32, "high": 64, "step": 16},
                     "sap_aug_s": {"low": 2.0, "high": 15.0}})


def command(**changes: Any) -> SearchCommand:
    values = dict(space=SPACE.to_json(), data_dir="/data", label_file="/data/label.csv",
                  class_config={"a": "A", "b": "B"}, model_dir="/out", trials=3, max_latency_ms=5.0,
                  max_size_kb=None, quantize="int8")
    return SearchCommand(**{**values, **changes})


def worker(journal: Path, name: str = "study", **changes: Any):
    """One worker's view of the study in ``journal`` (its own storage object, as a process has)."""
    storage = open_storage(str(journal))
    return open_study(storage, name, command(**changes), str(journal), optuna.samplers.RandomSampler(),
                      optuna.pruners.NopPruner())


def dead_process() -> Worker:
    """A worker on this host whose process has ended."""
    child = subprocess.Popen(["true"])
    child.wait()
    return Worker(Worker.current().host, child.pid, Worker.current().started)


# --- storages ------------------------------------------------------------------------------------------------------

def test_a_journal_file_and_an_sqlite_url_open_and_share_a_study(tmp_path):
    for where in (str(tmp_path / "journal.log"), f"sqlite:///{tmp_path / 'study.db'}"):
        first = open_study(open_storage(where), "s", command(), where, optuna.samplers.RandomSampler(),
                           optuna.pruners.NopPruner())
        second = open_study(open_storage(where), "s", command(), where, optuna.samplers.RandomSampler(),
                            optuna.pruners.NopPruner())
        assert (first.created, second.created) == (True, False)
        assert len(second.study.get_trials(states=(TrialState.WAITING,))) == 3


@pytest.mark.parametrize("storage, message", [
    ("sqlite:////no/such/folder/study.db", r"^--storage sqlite:////no/such/folder/study\.db: cannot open it as an "
                                           r"Optuna storage: .*unable to open database file"),
    ("postgresql://user:secret@localhost:1/db", r"^--storage postgresql://user:\*\*\*@localhost:1/db: cannot open it "
                                                r"as an Optuna storage: "),
    ("nosuchdb://x", r"^--storage nosuchdb://x: cannot open it as an Optuna storage: "),
])
def test_a_storage_that_cannot_be_opened_is_one_line_without_its_password(storage, message):
    with pytest.raises(DsplError, match=message) as caught:
        open_storage(storage)
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_journal_path_that_is_a_folder_or_no_journal_is_refused(tmp_path):
    with pytest.raises(DsplError, match="is a folder, expected a journal file"):
        open_storage(str(tmp_path))
    with pytest.raises(DsplError, match="its folder does not exist"):
        open_storage(str(tmp_path / "missing" / "journal.log"))
    os.mkfifo(tmp_path / "fifo")  # would block Optuna's reader for ever
    with pytest.raises(DsplError, match=r"fifo: is a named pipe \(FIFO\), expected a regular file \(Optuna journal"):
        open_storage(str(tmp_path / "fifo"))
    with pytest.raises(DsplError, match=r"^/dev/null: is a device, expected a regular file \(Optuna journal"):
        open_storage("/dev/null")
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a journal\n", encoding="utf-8")
    with pytest.raises(DsplError, match=r"notes\.txt: cannot open it as an Optuna storage"):
        open_storage(str(garbage))
    assert garbage.read_text(encoding="utf-8") == "not a journal\n"


# --- one command per study -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, difference", [
    ({"space": parse_space({**{k: [v] for k, v in example_hp().items()}, "dropout": [0.1, 0.3]}).to_json()},
     "it searches another space (key 'basemodel_name': choice [\"test_efficientnet\", \"test_vit\", \"resnet10t\"] "
     "there, constant \"mobilenetv3_small_050\" here)"),
    ({"max_latency_ms": 10.0}, "--max-latency-ms is 5.0 there, 10.0 here"),
    ({"trials": 4}, "--trials is 3 there, 4 here"),
    ({"quantize": "fp16"}, "--quantize is \"int8\" there, \"fp16\" here"),
])
def test_a_study_refuses_another_command_and_keeps_what_it_holds(tmp_path, changes, difference):
    journal = tmp_path / "journal.log"
    worker(journal)
    before = journal.read_bytes()
    with pytest.raises(DsplError) as caught:
        worker(journal, **changes)
    assert str(caught.value) == (f"study 'study' in {journal} was started by another command: {difference}; use "
                                 "another --study (or the command that started it)")
    assert journal.read_bytes() == before


def test_a_study_dspl_did_not_make_is_refused(tmp_path):
    journal = tmp_path / "journal.log"
    study = optuna.create_study(storage=open_storage(str(journal)), study_name="theirs", directions=["maximize"] * 3)
    study.add_trial(optuna.create_trial(values=[1.0, 2.0, 3.0]))
    with pytest.raises(DsplError, match=r"^study 'theirs' in .*journal\.log was not made by dspl search; use another "
                                        r"--study$"):
        worker(journal, "theirs")


# --- the queue: every trial to exactly one worker --------------------------------------------------------------------

def test_two_workers_take_every_queued_trial_exactly_once(tmp_path):
    journal = tmp_path / "journal.log"
    one, two = worker(journal), worker(journal)
    taken = []
    for shared in (one, two, one, two, one):
        trial = take_trial(shared)
        if trial is not None:
            taken.append(trial.number)
            shared.study.tell(trial, [0.5, 1.0, 1.0])
    assert sorted(taken) == [0, 1, 2]
    assert take_trial(one) is None and take_trial(two) is None
    assert len(one.study.get_trials()) == 3


def test_a_worker_that_loses_the_race_for_the_last_trial_marks_its_extra_trial_surplus(tmp_path, monkeypatch):
    from dspl.workflows.search import trial_rows

    journal = tmp_path / "journal.log"
    one, two = worker(journal, trials=1), worker(journal, trials=1)
    stale_view = two.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    taken = take_trial(one)  # worker one takes the last queued trial after worker two looked at the queue
    looks = iter([stale_view])
    real = two.study.get_trials
    monkeypatch.setattr(two.study, "get_trials", lambda *a, **k: next(looks, None) or real(*a, **k))
    assert take_trial(two) is None
    trials = one.study.get_trials()
    assert [(t.number, t.state) for t in trials] == [(0, TrialState.RUNNING), (1, TrialState.FAIL)]
    assert trials[1].system_attrs[SURPLUS_ATTR] is True
    one.study.tell(taken, [0.5, 1.0, 1.0])
    assert [row.number for row in trial_rows(one.study, SPACE.searched)] == [0]


def test_a_range_and_a_choice_are_sampled_inside_their_bounds(tmp_path):
    shared = worker(tmp_path / "journal.log", trials=40)
    seen = set()
    while (trial := take_trial(shared)) is not None:
        values = suggest(trial, SPACE)
        assert values["basemodel_name"] in SPACE.choices["basemodel_name"]
        for name, span in SPACE.ranges.items():
            assert span.contains(values[name]), (name, values[name])
        assert isinstance(values["image_width"], int) and isinstance(values["learning_rate"], float)
        SPACE.configuration(values, f"trial {trial.number}")
        seen.add(values["basemodel_name"])
        shared.study.tell(trial, [0.5, 1.0, 1.0])
    assert seen == set(SPACE.choices["basemodel_name"])


# --- stale workers -------------------------------------------------------------------------------------------------

def test_a_running_trial_of_a_gone_worker_is_stale_at_once_and_a_silent_one_after_the_grace_period(tmp_path):
    shared = worker(tmp_path / "journal.log")
    trial = take_trial(shared)
    frozen = shared.study.get_trials()[trial.number]
    now = time.time()
    assert stale_reason(frozen, now) is None
    shared.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, Worker.current().to_json())
    shared.storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_ATTR, now - 30)
    assert stale_reason(shared.study.get_trials()[trial.number], now) is None
    assert "no heartbeat from worker" in stale_reason(shared.study.get_trials()[trial.number], now, grace=10)
    gone = dead_process()
    shared.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, gone.to_json())
    assert stale_reason(shared.study.get_trials()[trial.number], now) == (
        f"its worker {gone} stopped (killed, crashed or out of time)")


def test_a_stale_trial_is_failed_by_one_worker_and_queued_again_with_its_parameters(tmp_path):
    journal = tmp_path / "journal.log"
    one, two = worker(journal), worker(journal)
    trial = take_trial(one)
    values = suggest(trial, SPACE)
    one.storage.set_trial_system_attr(trial._trial_id, WORKER_ATTR, dead_process().to_json())
    released = release_stale_trials(two.study, two.storage) + release_stale_trials(one.study, one.storage)
    assert [(t.number, "stopped" in reason) for t, reason in released] == [(trial.number, True)]
    trials = two.study.get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    assert "retried" in trials[trial.number].user_attrs["error"]
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.user_attrs[RETRY_OF] == trial.number
    taken = [take_trial(two) for _ in range(3)]
    assert all(t is not None for t in taken) and take_trial(two) is None
    again = next(t for t in taken if t._trial_id == retry._trial_id)
    assert suggest(again, SPACE) == values


def test_a_heartbeat_marks_the_trial_and_beats_until_the_trial_ends(tmp_path):
    shared = worker(tmp_path / "journal.log")
    trial = take_trial(shared)
    with Heartbeat(shared.storage, trial._trial_id, interval=3600):
        attrs = shared.study.get_trials()[trial.number].system_attrs
        assert Worker.from_json(attrs[WORKER_ATTR]) == Worker.current()
    assert time.time() - shared.study.get_trials()[trial.number].system_attrs[HEARTBEAT_ATTR] < 60


# --- the summary ---------------------------------------------------------------------------------------------------

def row(number: int, metric: float, latency: float, size: float, feasible: bool = True) -> TrialRow:
    """A complete trial."""
    return TrialRow(number, "complete", None, {"basemodel_name": "test_vit"}, metric, test_metric=0.5,
                    latency_ms=latency, size_kb=size, agreement=0.99, feasible=feasible, pareto=feasible,
                    model=f"/out/run_config_{number}/model.h5", tflite=f"/out/run_config_{number}/export/m.tflite")


def failed(number: int, error: str) -> TrialRow:
    return TrialRow(number, "failed", None, {"basemodel_name": "test_vit"}, error=error)


def test_the_best_trial_is_the_most_accurate_within_budget_then_the_fastest():
    rows = [row(0, 0.9, 9.0, 100.0, feasible=False), row(1, 0.8, 3.0, 100.0), row(2, 0.8, 2.0, 120.0),
            row(3, 0.7, 1.0, 50.0), failed(4, "out of memory")]
    assert best_row(rows).number == 2
    assert best_row([rows[0], rows[4]]) is None


def test_the_summary_files_are_written_and_read_back(tmp_path):
    info = SearchInfo("study", "journal.log", "uar", Budget(5.0, 200.0), "int8", 3, best=1,
                      searched=["basemodel_name"])
    rows = [row(0, 0.9, 9.0, 100.0, feasible=False), row(1, 0.8, 3.0, 100.0),
            failed(2, "its worker h:1 stopped; retried")]
    write_summary(rows, info, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"trials.csv", "pareto.csv", "pareto.png", "search.json"}
    assert read_summary(tmp_path) == (info, rows)
    assert [line["trial"] for line in read_csv(tmp_path / "pareto.csv")] == ["1"]
    assert json.loads((tmp_path / "search.json").read_text())["budget"] == {"max_latency_ms": 5.0, "max_size_kb": 200.0}
    edited = (tmp_path / "trials.csv").read_text().replace(",3.0,100.0,", ",,100.0,")  # trial 1's latency erased
    (tmp_path / "trials.csv").write_text(edited)
    with pytest.raises(DsplError, match=r"not a readable search summary \(trial 1 is complete but lacks its devel "
                                        r"metric, latency or size\)$"):
        read_summary(tmp_path)
