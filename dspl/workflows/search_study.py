"""Where a search lives: Optuna's storage, the study every worker of one command shares, and its queue of trials.

Storage is Optuna's own: a journal file (JournalFileBackend, safe on shared file systems: its lock is a symbolic
link) or any RDB URL (sqlite:///…, postgresql://…). The first worker to create the study stores the command it
runs (`SearchCommand`: the space, data, budgets, quantisation, number of trials) and queues one empty trial per
`--trials` (Optuna's `enqueue_trial({})`: its parameters are still sampled when a worker takes it); only then does it
mark the study ready. Every other worker waits for that mark and refuses a study whose stored command differs, so
one study never mixes two spaces or two budgets. A worker takes queued trials with `study.ask()`, which hands each
queued trial to exactly one worker: no trial runs twice and the total is the number queued. Beside the study lives
a single-objective twin (``<study>:devel``) that receives each trial's devel metric per epoch for pruning, since
Optuna prunes single-objective studies only.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from dspl.config import parse_json
from dspl.errors import DsplError
from dspl.files import prepare_output_dir, regular_file

COMMAND_ATTR = "dspl_command"
READY_ATTR = "dspl_ready"
SETUP_TIMEOUT_S = 60.0
"""How long a worker waits for the study's creator to queue its trials."""
SETUP_POLL_S = 0.1
DEVEL_SUFFIX = ":devel"


def is_url(storage: str) -> bool:
    """Whether a --storage value is an RDB URL (else it is a journal file's path)."""
    return "://" in storage


def describe_storage(storage: str) -> str:
    """The storage as messages name it (an RDB URL without its password)."""
    if not is_url(storage):
        return storage
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage


def open_storage(storage: str) -> BaseStorage:
    """Optuna's storage of a journal file path or an RDB URL; a DsplError says why it cannot be opened."""
    try:
        if is_url(storage):
            if storage.split("?")[0].rstrip("/") in ("sqlite:", "sqlite:/") or ":memory:" in storage:
                raise DsplError(f"--storage {storage}: an in-memory SQLite database lives and dies with one process: "
                                "give a file (sqlite:///search.db) or a server")
            return optuna.storages.RDBStorage(storage)
        path = Path(storage)
        if path.is_dir():
            raise DsplError(f"{path}: is a folder, expected a journal file (or an RDB URL) for --storage")
        if not path.parent.is_dir():
            raise DsplError(f"{path}: its folder does not exist, expected a journal file in an existing folder")
        if path.exists() or path.is_symlink():
            regular_file(path, "Optuna journal for --storage")  # a FIFO or device would block or take nothing
        prepare_output_dir(path.parent, "folder of the --storage journal")  # its lock file is made there
        _check_journal(path)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except DsplError:
        raise
    except Exception as exc:  # noqa: BLE001 - drivers, URLs, files and schemas fail in many ways: one line each
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__  # sqlalchemy's own
        raise DsplError(f"--storage {describe_storage(storage)}: cannot open it as an Optuna storage: "
                        f"{detail[:300]}") from None


FLAGS = {"space": "-hc", "data_dir": "-d", "label_file": "-l", "class_config": "-cc (its content)",
         "model_dir": "-md", "trials": "--trials", "max_latency_ms": "--max-latency-ms",
         "max_size_kb": "--max-size-kb", "quantize": "--quantize"}
"""The command-line flag of each part of a SearchCommand, for messages."""


def _check_journal(path: Path) -> None:
    """Refuse a file that is not empty and does not start with an Optuna journal record (nothing is appended to
    another program's file)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        first = handle.readline(1 << 20)
    try:
        record = parse_json(first, str(path))
    except DsplError:
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise DsplError(f"--storage {path}: cannot open it as an Optuna storage: the file is not an Optuna journal")


@dataclass(frozen=True)
class SearchCommand:
    """What makes two `dspl search` commands the same search: the space, the data, the output folder, the number
    of trials, the budgets and the quantisation. A study stores the command that created it."""

    space: dict[str, Any]
    data_dir: str
    label_file: str
    class_config: dict[str, str]
    model_dir: str
    trials: int
    max_latency_ms: float | None
    max_size_kb: float | None
    quantize: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def difference(self, stored: dict[str, Any]) -> str | None:
        """How a stored command differs from this one (the first difference, for a message), or None."""
        mine = self.to_json()
        if json.dumps(stored.get("space"), sort_keys=True) != json.dumps(mine["space"], sort_keys=True):
            return f"it searches another space ({_space_difference(stored.get('space') or {}, mine['space'])})"
        for name, value in mine.items():
            if json.dumps(stored.get(name), sort_keys=True) != json.dumps(value, sort_keys=True):
                return f"{FLAGS[name]} is {json.dumps(stored.get(name))} there, {json.dumps(value)} here"
        return None


def _space_difference(stored: dict[str, Any], mine: dict[str, Any]) -> str:
    """The first key whose entry differs between two spaces' plain data."""
    def entries(space: dict[str, Any]) -> dict[str, str]:
        return {key: f"{kind[:-1] if kind != 'constants' else 'constant'} {json.dumps(value)}"
                for kind in ("constants", "choices", "ranges") for key, value in space.get(kind, {}).items()}

    theirs, ours = entries(stored), entries(mine)
    key = next(k for k in dict.fromkeys([*ours, *theirs]) if theirs.get(k) != ours.get(k))
    return f"key '{key}': {theirs.get(key, 'absent')} there, {ours.get(key, 'absent')} here"


@dataclass
class SharedStudy:
    """The study of one search and its devel twin (for pruning), as one worker holds them."""

    study: optuna.Study
    devel: optuna.Study
    storage: BaseStorage
    created: bool


def study_exists(storage: BaseStorage, name: str) -> bool:
    """Whether ``storage`` holds a study named ``name``."""
    return any(study.study_name == name for study in storage.get_all_studies())


def open_study(storage: BaseStorage, name: str, command: SearchCommand, where: str,
               sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner) -> SharedStudy:
    """Create the study (storing ``command`` and queuing its trials) or join it; a DsplError refuses a study that
    another command made, one that dspl did not make, and one whose creator never finished setting it up.

    ``where`` names the storage in messages. Objectives: devel metric up, latency down, size down.
    """
    created = False
    if not study_exists(storage, name):  # looked up first: joining a study writes nothing until it is checked
        try:
            study = optuna.create_study(storage=storage, study_name=name,
                                        directions=["maximize", "minimize", "minimize"], sampler=sampler)
            created = True
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it just now
            pass
    if not created:
        study = optuna.load_study(storage=storage, study_name=name, sampler=sampler)
    if created:
        study.set_user_attr(COMMAND_ATTR, command.to_json())
        for _ in range(command.trials):
            study.enqueue_trial({})
        optuna.create_study(storage=storage, study_name=name + DEVEL_SUFFIX, direction="maximize",
                            pruner=pruner, load_if_exists=True)
        study.set_user_attr(READY_ATTR, True)
    else:
        _wait_until_ready(study, name, command, where)
    devel = optuna.load_study(storage=storage, study_name=name + DEVEL_SUFFIX, pruner=pruner,
                              sampler=optuna.samplers.RandomSampler())
    return SharedStudy(study, devel, storage, created)


def _wait_until_ready(study: optuna.Study, name: str, command: SearchCommand, where: str) -> None:
    """Wait for the study's creator to finish setting it up; refuse it when its command differs from ``command``."""
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while True:
        attrs = study.user_attrs
        stored = attrs.get(COMMAND_ATTR)
        if stored is not None:
            difference = command.difference(stored)
            if difference is not None:
                raise DsplError(f"study '{name}' in {where} was started by another command: {difference}; use "
                                "another --study (or the command that started it)")
            if attrs.get(READY_ATTR):
                return
        elif study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            raise DsplError(f"study '{name}' in {where} was not made by dspl search; use another --study")
        if time.monotonic() > deadline:
            what = "was not made by dspl search" if stored is None else "was left unfinished by a run killed while " \
                                                                       "creating it (it queued no trials)"
            raise DsplError(f"study '{name}' in {where} {what}; use another --study")
        time.sleep(SETUP_POLL_S)


SURPLUS_ATTR = "dspl_surplus"


def take_trial(shared: SharedStudy) -> optuna.Trial | None:
    """The next queued trial, now this worker's, or None when the queue is empty.

    Two workers may both see the last queued trial; the one that loses gets a new trial from `study.ask()`,
    which is marked surplus and failed at once (summaries leave it out), so the total stays the number queued.
    """
    study = shared.study
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial = study.ask()
        if "fixed_params" in shared.storage.get_trial_system_attrs(trial._trial_id):
            return trial
        shared.storage.set_trial_system_attr(trial._trial_id, SURPLUS_ATTR, True)
        study.tell(trial, state=TrialState.FAIL)
    return None
