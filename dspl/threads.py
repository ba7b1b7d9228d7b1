"""How many CPU threads dspl computes with, decided in one place, before torch's OpenMP runtime starts.

dspl runs on shared machines: servers, laptops, SLURM nodes running several array tasks. OpenMP's defaults spin
against them: a thread that finishes its share of a parallel region busy-waits at the barrier while another one
waits for a time slice on a core a second process holds, which made batch-1 plots 90x slower with one of two cores
busy. The policy (`configure`):

- threads: the CPUs this process may use, the least of its affinity mask, its cgroup's CPU quota and
  ``SLURM_CPUS_PER_TASK``;
- waiting: an OpenMP thread that reaches a barrier spins for about 0.1 ms (GNU OpenMP's ``GOMP_SPINCOUNT``; the
  back-to-back parallel regions of a training step meet within it), then sleeps (``OMP_WAIT_POLICY=PASSIVE``)
  instead of spinning for ~3 ms or, with torch's ``ACTIVE`` hint, for minutes; TensorFlow's thread pools get the
  same thread count;
- small work: a computation too small to pay for a parallel region (one chunk's plot) runs on one thread;
- busy CPUs: before large work (a batch of plots, and the training or prediction step that follows it) the
  thread count follows the CPUs other processes left free since the last look (`CpuShare`, from /proc/stat):
  on 2 CPUs with one taken by another process, 1 thread, which then needs no barrier at all (`work_threads`).
  Training's numbers depend on the thread count, so on a machine whose load changes a seed's model can too; an
  explicit count (below) keeps it fixed. Holding 2 threads through training instead ran it at 0.23x its idle speed
  beside one busy core (bench/RESULTS.md).

An explicit setting wins and stays fixed: ``DSPL_THREADS`` or `dspl --threads N`, else ``OMP_NUM_THREADS``, and
a count set with ``torch.set_num_threads`` after dspl set its own; an explicit ``OMP_WAIT_POLICY`` is kept. The
environment variables only take effect if they are set before torch (and TensorFlow) load their runtimes:
`import dspl` applies the policy, so a script that imports dspl first gets it whole. If torch was imported before,
dspl can still set its thread count (unless the user changed it with ``torch.set_num_threads``), but not its wait
policy: set ``OMP_WAIT_POLICY=PASSIVE`` in the environment then.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, MutableMapping

from dspl.errors import DsplError
from dspl.quiet import on_import

THREADS_ENV = "DSPL_THREADS"
APPLIED_ENV = "DSPL_APPLIED_THREADS"  # what dspl itself set OMP_NUM_THREADS to (children inherit both)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Environment variables each runtime reads when it starts: the thread count, and OpenMP's wait policy.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS")
WAIT_VARIABLE, PASSIVE = "OMP_WAIT_POLICY", "PASSIVE"
SPIN_VARIABLE, SPIN_COUNT = "GOMP_SPINCOUNT", "10000"
"""GNU OpenMP spins ~100,000 times per ms. Idle, one training epoch of the example set ran at 59 files/s with no
spinning (PASSIVE alone) and 83-93 files/s with 10,000 spins; with one of 2 CPUs busy, 100,000 spins fell to 63
while 10,000 kept 84 (bench/contention.py's train measurement, both with busy CPUs adapted to)."""


@dataclass(frozen=True)
class ThreadPolicy:
    """The number of intra-op threads and why (what limited it, or who set it)."""

    threads: int
    reason: str
    explicit: bool = False  # the user chose the count: it is not adapted to busy CPUs


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


def set_by_user(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a runtime's thread variable holds the user's value: set, not blank, and not to what dspl set (a child
    process inherits both dspl's value and APPLIED_ENV)."""
    environ = os.environ if environ is None else environ
    return environ.get(name, "").strip() != "" and environ[name] != environ.get(APPLIED_ENV)


def decide(environ: Mapping[str, str], affinity: int, quota: float | None,
           requested: int | None = None) -> ThreadPolicy:
    """The policy for a process that may run on ``affinity`` CPUs under a cgroup quota of ``quota`` CPUs (None:
    none), with ``requested`` threads asked for explicitly (`dspl --threads`)."""
    if requested is not None:
        return ThreadPolicy(requested, "--threads", explicit=True)
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value and not (name == "OMP_NUM_THREADS" and value == environ.get(APPLIED_ENV)):
            return ThreadPolicy(_positive_int(name, value.split(",")[0]), f"{name} (set by the user)", explicit=True)
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
        if requested is not None or not set_by_user(name, environ):
            environ[name] = str(policy.threads)
    environ[APPLIED_ENV] = str(policy.threads)
    if WAIT_VARIABLE not in environ:
        environ[WAIT_VARIABLE] = PASSIVE
        environ.setdefault(SPIN_VARIABLE, SPIN_COUNT)
    torch = sys.modules.get("torch")
    if torch is not None and (requested is not None or torch.get_num_threads() == _torch_default_threads()):
        torch.set_num_threads(policy.threads)
    elif torch is None and policy.explicit:
        on_import("torch", after=_torch_started)
    _applied[:] = [policy]
    _share.reset()
    return policy


def _torch_started() -> None:
    """Right after torch's import: an explicit count it did not take from OMP_NUM_THREADS (torch caps that at the
    CPUs of its affinity mask, so `--threads 3` on 2 CPUs ran on 2) is set now."""
    policy, torch = applied_policy(), sys.modules["torch"]
    if policy.explicit and torch.get_num_threads() != policy.threads:
        torch.set_num_threads(policy.threads)


def _torch_default_threads() -> int:
    """The thread count torch starts with when nothing sets one: the CPUs of its affinity mask."""
    return len(os.sched_getaffinity(0))


def applied_policy() -> ThreadPolicy:
    """The policy configure() applied (the current one if none was)."""
    return _applied[0] if _applied else current_policy()


def threads() -> int:
    """The intra-op thread count of the applied policy (the current one if none was applied)."""
    return applied_policy().threads


SMALL_WORK_SAMPLES = 1 << 18
"""Audio samples (16 s at 16 kHz: up to eight 2 s chunks) up to which plots are made on one thread. Measured on 2
idle cores (224x224 plots of 2 s chunks, chunks/s on 1 vs 2 threads): batch 1 2,137 vs 994, batch 8 2,979 vs
2,673, batch 64 1,456 vs 1,766: below that size a parallel region's start and barrier cost more than they
save, idle and more so on a busy machine."""


PROC_STAT = Path("/proc/stat")
LOOK_INTERVAL_S = 0.25
"""Seconds between two looks at the CPUs' busy time: /proc/stat counts in clock ticks (10 ms), so shorter windows
are noise; one look costs ~30 us."""


def busy_seconds(stat_text: str, cpus: set[int], ticks_per_second: int) -> float:
    """CPU seconds the ``cpus`` spent busy (user, nice, system, irq, softirq, steal) since boot, from the text of
    /proc/stat."""
    ticks = 0
    for line in stat_text.splitlines():
        name, _, fields = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields.split()[:8])
            ticks += user + nice + system + irq + softirq + steal
    return ticks / ticks_per_second


@dataclass(frozen=True)
class CpuLook:
    """One look at this process's CPUs: when (monotonic seconds), their busy CPU seconds since boot, and this
    process's own CPU seconds."""

    when: float
    busy: float
    own: float

    def others_busy(self, later: "CpuLook") -> float:
        """CPUs other processes kept busy from this look to a ``later`` one (0 on an idle machine)."""
        seconds = later.when - self.when
        return max(0.0, (later.busy - self.busy) - (later.own - self.own)) / seconds if seconds > 0 else 0.0


def look_at_cpus(stat: Path = PROC_STAT, clock: Callable[[], float] = time.monotonic,
                 own_seconds: Callable[[], float] = lambda: sum(os.times()[:2])) -> CpuLook | None:
    """A CpuLook now, or None where /proc/stat cannot be read (not Linux, a sandbox)."""
    try:
        busy = busy_seconds(stat.read_text(), os.sched_getaffinity(0), os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        return None
    return CpuLook(clock(), busy, own_seconds())


class CpuShare:
    """The thread count large work should use now: the policy's count, less the CPUs other processes kept busy
    since the last look (looked at most every LOOK_INTERVAL_S; the first call keeps the policy's count)."""

    def __init__(self, stat: Path = PROC_STAT, clock: Callable[[], float] = time.monotonic,
                 own_seconds: Callable[[], float] = lambda: sum(os.times()[:2])) -> None:
        self.stat, self.clock, self.own_seconds = stat, clock, own_seconds
        self.reset()

    def reset(self) -> None:
        self._last: CpuLook | None = None
        self._threads: int | None = None
        self._set: int | None = None  # the count adapt() last gave torch

    def adapt(self, torch: Any, policy: ThreadPolicy) -> None:
        """Give torch the count threads() says, unless the user chose one: an explicit policy, or a count set
        with torch.set_num_threads since dspl last set its own."""
        current = torch.get_num_threads()
        if self.chosen_by_user(current, policy):
            return
        self._set = self.threads(policy.threads)
        if self._set != current:
            torch.set_num_threads(self._set)

    def chosen_by_user(self, current: int, policy: ThreadPolicy) -> bool:
        """Whether torch's ``current`` count is the user's: an explicit policy, or a count set with
        torch.set_num_threads since dspl last set its own."""
        return policy.explicit or current != (policy.threads if self._set is None else self._set)

    def threads(self, limit: int) -> int:
        """At most ``limit`` threads: as many as CPUs were free over the last window, rounded."""
        if self._last is not None and self.clock() - self._last.when < LOOK_INTERVAL_S:
            return min(limit, self._threads or limit)
        look = look_at_cpus(self.stat, self.clock, self.own_seconds)
        if look is None:  # no /proc: keep the policy's count
            return limit
        if self._last is not None:  # the CPUs other processes left free since the last look
            free = len(os.sched_getaffinity(0)) - self._last.others_busy(look)
            self._threads = max(1, min(limit, int(free + 0.5)))
        self._last = look
        return min(limit, self._threads or limit)

    def look_now(self, limit: int, sleep: Callable[[float], None] = time.sleep) -> int:
        """threads(limit) from a fresh window: two looks LOOK_INTERVAL_S apart while this process waits, so what
        the other processes do now decides, not what they did during this process's own earlier work."""
        self._last = self._threads = None  # torch's count (_set) stays known
        self.threads(limit)
        sleep(LOOK_INTERVAL_S)
        return self.threads(limit)


_share = CpuShare()


def timing_threads(current: int | None = None) -> int:
    """The thread count a latency measurement starting now runs on: the user's when they chose one (``current``:
    torch's count now, theirs if they set it with torch.set_num_threads), else the CPUs other processes leave free
    (looked at for LOOK_INTERVAL_S first), which is also what dspl's own large work gets now. Beside a busy CPU a
    figure timed on more threads measures the waits for that CPU (a PyTorch forward pass of a small model took 15x
    longer on 2 threads than on 1 with one of 2 CPUs busy), not the model."""
    policy = applied_policy()
    if current is not None and _share.chosen_by_user(current, policy):
        return current
    return policy.threads if policy.explicit else _share.look_now(policy.threads)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block's torch work on ``count`` threads, then restore torch's count."""
    import torch

    current = torch.get_num_threads()
    if count == current:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(current)


@contextmanager
def work_threads(small: bool) -> Iterator[None]:
    """The thread count for the block's torch work and the work that follows it (a step's forward and backward):
    the CPUs free now (CpuShare.adapt); one thread for the block alone when its work is ``small``."""
    import torch

    _share.adapt(torch, applied_policy())
    with torch_threads(1 if small else torch.get_num_threads()):
        yield
