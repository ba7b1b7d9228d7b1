"""Workers of a shared study: who runs a trial, its heartbeat, and the retry of trials whose worker is gone.

Optuna 5.1 keeps heartbeats for RDB storages only (its JournalStorage has none, optuna#6615), so dspl keeps one
heartbeat for every storage as trial system attributes: the worker (host, process id and the process's start
time, so a reused id is not taken for the old process) when it takes the trial, then the time every
HEARTBEAT_S seconds. A running trial is stale when its worker is on this host and its process is gone (a kill
-9, a crash, a SLURM time limit: noticed at once), or when its last heartbeat is older than GRACE_S (a worker on
another node). A stale trial is failed, which only one worker can do (Optuna refuses to finish a finished trial),
and that worker queues a retry with the same parameters (`study.enqueue_trial`), marked `retry_of` the first
trial of the chain; the retry trains into that trial's folder and so resumes its last epoch checkpoint.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import optuna
import psutil
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

WORKER_ATTR = "dspl_worker"
HEARTBEAT_ATTR = "dspl_heartbeat"
RETRY_OF = "retry_of"
ERROR = "error"
HEARTBEAT_S = 30.0
GRACE_S = 600.0
"""A worker on another host is presumed gone after this long without a heartbeat (generous: clocks of nodes
differ a little, and shared file systems stall)."""


@dataclass(frozen=True)
class Worker:
    """One worker process: its host, process id and the process's start time (seconds since the epoch)."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> Worker:
        """This process."""
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Worker:
        return cls(str(data["host"]), int(data["pid"]), float(data["started"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def gone(self) -> bool:
        """Whether this worker is known to have ended: it ran on this host and its process no longer runs."""
        if self.host != socket.gethostname():
            return False
        try:
            process = psutil.Process(self.pid)
            return process.status() == psutil.STATUS_ZOMBIE or abs(process.create_time() - self.started) > 0.5
        except psutil.NoSuchProcess:
            return True

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


class Heartbeat:
    """For the duration of a trial: marks the trial as this worker's and writes its heartbeat every ``interval``
    seconds from a thread."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: float = HEARTBEAT_S) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="dspl-search-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.storage.set_trial_system_attr(self.trial_id, WORKER_ATTR, Worker.current().to_json())
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while True:
            try:
                self.storage.set_trial_system_attr(self.trial_id, HEARTBEAT_ATTR, time.time())
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # another worker failed it for a missed heartbeat; the trial's end will say so
            if self._stop.wait(self.interval):
                return


def stale_reason(trial: FrozenTrial, now: float, grace: float = GRACE_S) -> str | None:
    """Why a running trial is stale (its worker is gone, or silent for longer than ``grace`` seconds), or None."""
    if trial.state != TrialState.RUNNING:
        return None
    data = trial.system_attrs.get(WORKER_ATTR)
    if data is not None and Worker.from_json(data).gone():
        return f"its worker {Worker.from_json(data)} stopped (killed, crashed or out of time)"
    last = trial.system_attrs.get(HEARTBEAT_ATTR)
    if last is None:
        start = trial.datetime_start
        last = start.timestamp() if start is not None else now
    if now - last > grace:
        worker = f" from worker {Worker.from_json(data)}" if data is not None else ""
        return f"no heartbeat{worker} for {now - last:.0f} s"
    return None


def origin(trial: FrozenTrial) -> int:
    """The number of the first trial of a trial's retry chain (its own number when it is no retry)."""
    return int(trial.user_attrs.get(RETRY_OF, trial.number))


def release_stale_trials(study: optuna.Study, storage: BaseStorage) -> list[tuple[FrozenTrial, str]]:
    """Fail every stale running trial this worker wins the race for and queue its retry; returns (trial, reason)
    of each one released."""
    released = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = stale_reason(trial, time.time())
        if reason is None:
            continue
        try:
            storage.set_trial_user_attr(trial._trial_id, ERROR, f"{reason}; retried")
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker released it first
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: origin(trial)})
        released.append((trial, reason))
    return released
