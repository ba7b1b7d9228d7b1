"""How many CPU threads dspl computes with, decided in one place, before torch's OpenMP runtime starts.

dspl runs on shared machines: servers, laptops, SLURM nodes running several array tasks. OpenMP's defaults spin
against them: a thread that finishes its share of a parallel region busy-waits at the barrier while another one
waits for a time slice on a core a second process holds, which made batch-1 plots 90x slower with one of two cores
busy. The policy (`configure`):

- threads: the CPUs this process may use, the least of its affinity mask, its cgroup's CPU quota and
  ``SLURM_CPUS_PER_TASK``;
- waiting: OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``), so an idle thread sleeps instead of
  spinning; TensorFlow's thread pools get the same thread count;
- small work: a computation too small to pay for a parallel region (one chunk's plot) runs on one thread
  (`single_thread`).

An explicit setting wins: ``DSPL_THREADS`` or `dspl --threads N`, else ``OMP_NUM_THREADS``; an explicit
``OMP_WAIT_POLICY`` is kept. The environment variables only take effect if they are set before torch (and
TensorFlow) load their runtimes: `import dspl` applies the policy, so a script that imports dspl first gets it
whole. If torch was imported before, dspl can still set its thread count (unless the user changed it with
``torch.set_num_threads``), but not its wait policy: set ``OMP_WAIT_POLICY=PASSIVE`` in the environment then.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, MutableMapping

from dspl.errors import DsplError

THREADS_ENV = "DSPL_THREADS"
APPLIED_ENV = "DSPL_APPLIED_THREADS"  # what dspl itself set OMP_NUM_THREADS to (children inherit both)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Environment variables each runtime reads when it starts: the thread count, and OpenMP's wait policy.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
WAIT_VARIABLE, PASSIVE = "OMP_WAIT_POLICY", "PASSIVE"


@dataclass(frozen=True)
class ThreadPolicy:
    """The number of intra-op threads and why (what limited it, or who set it)."""

    threads: int
    reason: str


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs a cgroup's quota allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None without a quota."""
    try:
        if (root / "cpu.max").is_file():
            quota, period = (root / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise DsplError(f"{name}={value!r}: expected a whole number of threads >= 1")
    return number


def decide(environ: Mapping[str, str], affinity: int, quota: float | None,
           requested: int | None = None) -> ThreadPolicy:
    """The policy for a process that may run on ``affinity`` CPUs under a cgroup quota of ``quota`` CPUs (None:
    none), with ``requested`` threads asked for explicitly (`dspl --threads`)."""
    if requested is not None:
        return ThreadPolicy(requested, "--threads")
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value and not (name == "OMP_NUM_THREADS" and value == environ.get(APPLIED_ENV)):
            return ThreadPolicy(_positive_int(name, value.split(",")[0]), f"{name} (set by the user)")
    limits = [(affinity, f"{affinity} CPU(s) in the affinity mask")]
    if quota is not None:
        limits.append((max(1, math.floor(quota)), f"a cgroup CPU quota of {quota:g} CPU(s)"))
    slurm = environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm:
        limits.append((_positive_int("SLURM_CPUS_PER_TASK", slurm), f"SLURM_CPUS_PER_TASK={slurm}"))
    threads, reason = min(limits, key=lambda limit: limit[0])
    return ThreadPolicy(threads, reason)


def current_policy(requested: int | None = None, environ: Mapping[str, str] | None = None) -> ThreadPolicy:
    """The policy for this process, from its affinity mask, its cgroup and the environment."""
    environ = os.environ if environ is None else environ
    return decide(environ, len(os.sched_getaffinity(0)), cgroup_cpu_quota(), requested)


_applied: list[ThreadPolicy] = []


def configure(requested: int | None = None, environ: MutableMapping[str, str] | None = None) -> ThreadPolicy:
    """Decide the policy and apply it: the runtimes' environment (before they start) and, if torch is running
    already, its thread count (unless the user set one). Returns the policy; later calls re-apply it with a new
    ``requested`` count."""
    environ = os.environ if environ is None else environ
    policy = current_policy(requested, environ)
    for name in THREAD_VARIABLES:
        if requested is not None or name not in environ or environ[name] == environ.get(APPLIED_ENV):
            environ[name] = str(policy.threads)
    environ[APPLIED_ENV] = str(policy.threads)
    environ.setdefault(WAIT_VARIABLE, PASSIVE)
    torch = sys.modules.get("torch")
    if torch is not None and (requested is not None or torch.get_num_threads() == _torch_default_threads()):
        torch.set_num_threads(policy.threads)
    _applied[:] = [policy]
    return policy


def _torch_default_threads() -> int:
    """The thread count torch starts with when nothing sets one: the CPUs of its affinity mask."""
    return len(os.sched_getaffinity(0))


def threads() -> int:
    """The intra-op thread count of the applied policy (the current one if none was applied)."""
    return (_applied or [current_policy()])[0].threads


SMALL_WORK_SAMPLES = 1 << 18
"""Audio samples (16 s at 16 kHz: up to eight 2 s chunks) up to which plots are made on one thread. Measured on 2
idle cores (224x224 plots of 2 s chunks, chunks/s on 1 vs 2 threads): batch 1 2,137 vs 994, batch 8 2,979 vs
2,673, batch 64 1,456 vs 1,766: below that size a parallel region's start and barrier cost more than they
save, idle and more so on a busy machine."""


@contextmanager
def single_thread(small: bool = True) -> Iterator[None]:
    """Run the block's torch operations on one thread when the work is ``small``, then restore the count."""
    import torch

    previous = torch.get_num_threads()
    if not small or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
