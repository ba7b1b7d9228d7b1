"""The thread policy: the CPUs a process may use (affinity, cgroup quota, SLURM), explicit settings winning, and
what it sets before the runtimes start."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from dspl.errors import DsplError
from dspl.threads import (
    APPLIED_ENV, LOOK_INTERVAL_S, PASSIVE, SPIN_COUNT, THREAD_VARIABLES, CpuLook, CpuShare, ThreadPolicy,
    busy_seconds, cgroup_cpu_quota, configure, decide, look_at_cpus, set_by_user,
)


@pytest.mark.parametrize("environ, affinity, quota, threads, reason", [
    ({}, 8, None, 8, "8 CPU(s) in the affinity mask"),
    ({}, 2, None, 2, "2 CPU(s) in the affinity mask"),
    ({}, 8, 1.5, 1, "a cgroup CPU quota of 1.5 CPU(s)"),
    ({}, 8, 0.5, 1, "a cgroup CPU quota of 0.5 CPU(s)"),
    ({}, 8, 4.0, 4, "a cgroup CPU quota of 4 CPU(s)"),
    ({}, 3, 4.0, 3, "3 CPU(s) in the affinity mask"),
    ({"SLURM_CPUS_PER_TASK": "2"}, 64, None, 2, "SLURM_CPUS_PER_TASK=2"),
    ({"SLURM_CPUS_PER_TASK": "8"}, 4, None, 4, "4 CPU(s) in the affinity mask"),
    ({"OMP_NUM_THREADS": "3"}, 64, 1.0, 3, "OMP_NUM_THREADS (set by the user)"),
    ({"OMP_NUM_THREADS": "4,2"}, 64, None, 4, "OMP_NUM_THREADS (set by the user)"),
    ({"DSPL_THREADS": "5", "OMP_NUM_THREADS": "3"}, 2, None, 5, "DSPL_THREADS (set by the user)"),
    ({"OMP_NUM_THREADS": "2", APPLIED_ENV: "2", "SLURM_CPUS_PER_TASK": "1"}, 2, None, 1, "SLURM_CPUS_PER_TASK=1"),
])
def test_the_decision_takes_the_least_limit_unless_the_user_set_one(environ, affinity, quota, threads, reason):
    policy = decide(environ, affinity, quota)
    assert (policy.threads, policy.reason) == (threads, reason)


def test_an_explicit_request_wins_over_everything():
    policy = decide({"OMP_NUM_THREADS": "3", "SLURM_CPUS_PER_TASK": "1"}, 2, 1.0, requested=6)
    assert (policy.threads, policy.reason) == (6, "--threads")


@pytest.mark.parametrize("name, value", [("OMP_NUM_THREADS", "0"), ("SLURM_CPUS_PER_TASK", "many"),
                                         ("DSPL_THREADS", "-2")])
def test_a_bad_setting_is_one_clear_error(name, value):
    with pytest.raises(DsplError, match=f"^{name}='{value}': expected a whole number of threads >= 1$"):
        decide({name: value}, 2, None)


def test_cgroup_quotas_of_both_versions_are_read(tmp_path):
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path / "v2") == 1.5
    (tmp_path / "v2" / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "v2") is None
    (tmp_path / "v1" / "cpu").mkdir(parents=True)
    (tmp_path / "v1" / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "v1" / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "v1") == 0.5
    (tmp_path / "v1" / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "v1") is None
    assert cgroup_cpu_quota(tmp_path / "none") is None


def test_configure_sets_the_runtimes_environment_and_keeps_the_users_wait_policy():
    environ = {"SLURM_CPUS_PER_TASK": "1"}
    policy = configure(environ=environ)
    assert policy.threads == 1
    assert environ["OMP_NUM_THREADS"] == environ["TF_NUM_INTRAOP_THREADS"] == environ[APPLIED_ENV] == "1"
    assert environ["OMP_WAIT_POLICY"] == PASSIVE
    mine = {"OMP_WAIT_POLICY": "ACTIVE", "MKL_NUM_THREADS": "7"}
    configure(environ=mine)
    assert mine["OMP_WAIT_POLICY"] == "ACTIVE" and mine["MKL_NUM_THREADS"] == "7"
    configure(requested=3, environ=mine)
    assert mine["OMP_NUM_THREADS"] == mine["MKL_NUM_THREADS"] == "3"


def run_python(code: str, **environ: str) -> str:
    """stdout of ``code`` in a fresh Python whose environment holds no thread setting but ``environ``."""
    clean = {k: v for k, v in os.environ.items()
             if k not in (*THREAD_VARIABLES, "OMP_WAIT_POLICY", APPLIED_ENV, "DSPL_THREADS", "SLURM_CPUS_PER_TASK")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **environ}, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.slow
def test_importing_dspl_before_torch_applies_the_policy_to_torch():
    code = "import dspl, os, torch; print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])"
    assert run_python(code, SLURM_CPUS_PER_TASK="1") == f"1 {PASSIVE}"


@pytest.mark.slow
def test_an_explicit_count_above_the_cpus_reaches_torch():
    """torch caps OMP_NUM_THREADS at the CPUs of its affinity mask when it starts; the user's count is theirs."""
    count = len(os.sched_getaffinity(0)) + 1
    assert run_python("import dspl, torch; print(torch.get_num_threads())", DSPL_THREADS=str(count)) == str(count)


@pytest.mark.parametrize("value", ["abc", "0", "1.5"])
def test_a_bad_thread_variable_is_one_line_from_the_cli_and_help_still_works(value, tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARIABLES, APPLIED_ENV, "DSPL_THREADS")}

    def dspl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dspl", *args], env={**clean, "OMP_NUM_THREADS": value},
                              capture_output=True, text=True)

    assert dspl("--help").returncode == 0
    result = dspl("example-data", "-o", str(tmp_path / "example"))
    assert (result.returncode, result.stderr.strip().splitlines()) == (
        1, [f"error: OMP_NUM_THREADS='{value}': expected a whole number of threads >= 1"])
    assert not (tmp_path / "example").exists()


def test_a_blank_thread_variable_is_no_setting():
    """libgomp refuses a blank OMP_NUM_THREADS with a message of its own: dspl sets its count there."""
    environ = {"OMP_NUM_THREADS": " "}
    assert not set_by_user("OMP_NUM_THREADS", environ)
    policy = configure(environ=environ)
    assert not policy.explicit and environ["OMP_NUM_THREADS"] == str(policy.threads)


@pytest.mark.slow
def test_a_thread_count_set_in_torch_before_dspl_is_kept():
    code = "import torch; torch.set_num_threads(1); import dspl; print(torch.get_num_threads())"
    assert run_python(code) == "1"


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--threads", "1", "tflite-stats"], ["tflite-stats", "--threads", "1"]])
def test_the_threads_option_applies_before_the_command_runs(tmp_path, args):
    not_a_model = tmp_path / "x.tflite"
    not_a_model.write_text("not a model")
    code = ("import sys, torch; from dspl.cli.main import cli\n"
            f"sys.argv = ['dspl', *{args!r}, '-md', {str(not_a_model)!r}]\n"
            "try:\n    cli()\nexcept SystemExit:\n    pass\nprint(torch.get_num_threads())")
    assert run_python(code).splitlines()[-1] == "1"


def test_the_wait_policy_spins_briefly_then_sleeps_unless_the_user_chose_one():
    environ: dict[str, str] = {}
    configure(environ=environ)
    assert (environ["OMP_WAIT_POLICY"], environ["GOMP_SPINCOUNT"]) == (PASSIVE, SPIN_COUNT)
    mine = {"OMP_WAIT_POLICY": "ACTIVE"}
    configure(environ=mine)
    assert "GOMP_SPINCOUNT" not in mine


STAT = """cpu  900 0 300 5000 10 0 0 0 0 0
cpu0 {user0} 0 100 2500 5 0 0 0 0 0
cpu1 {user1} 0 100 2500 5 0 {irq1} {steal1} 0 0
intr 12345
"""


def stat_text(user0: int, user1: int, irq1: int = 0, steal1: int = 0) -> str:
    return STAT.format(user0=user0, user1=user1, irq1=irq1, steal1=steal1)


def test_busy_seconds_count_the_busy_ticks_of_the_given_cpus_only():
    text = stat_text(200, 300, irq1=20, steal1=30)
    assert busy_seconds(text, {0}, 100) == pytest.approx(3.0)  # user 200 + system 100 ticks
    assert busy_seconds(text, {1}, 100) == pytest.approx(4.5)  # user, system, irq and steal
    assert busy_seconds(text, {0, 1}, 100) == pytest.approx(7.5)
    assert busy_seconds(text, {7}, 100) == 0.0


@pytest.mark.parametrize("busy, own, others", [(2.0, 2.0, 0.0), (2.0, 1.0, 1.0), (1.0, 1.5, 0.0), (2.0, 0.0, 2.0)])
def test_other_processes_kept_busy_what_the_cpus_were_busy_beyond_this_process(busy, own, others):
    before = CpuLook(10.0, 5.0, 1.0)
    assert before.others_busy(CpuLook(11.0, 5.0 + busy, 1.0 + own)) == pytest.approx(others)
    assert before.others_busy(CpuLook(13.0, 5.0 + 3 * busy, 1.0 + 3 * own)) == pytest.approx(others)
    assert before.others_busy(before) == 0.0  # no time between: nothing to say


def test_a_look_reads_the_stat_file_and_is_none_without_one(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {1})
    monkeypatch.setattr(os, "sysconf", lambda _name: 100)
    (tmp_path / "stat").write_text(stat_text(200, 300))
    assert look_at_cpus(tmp_path / "stat", lambda: 7.0, lambda: 0.5) == CpuLook(7.0, 4.0, 0.5)  # CPU 1: 300 + 100
    assert look_at_cpus(tmp_path / "absent") is None


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def share_on(tmp_path, own: list[float]) -> tuple[CpuShare, Clock, Any]:
    """A CpuShare reading a /proc/stat the test writes, with a hand-moved clock and scripted own CPU seconds."""
    stat, clock, own_seconds = tmp_path / "stat", Clock(), iter(own)
    share = CpuShare(stat, clock, lambda: next(own_seconds))

    def look(user0: int, user1: int) -> int:
        stat.write_text(stat_text(user0, user1))
        return share.threads(2)

    return share, clock, look


def test_the_share_keeps_the_limit_first_then_follows_the_cpus_others_leave_free(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(os, "sysconf", lambda _name: 100)
    _, clock, look = share_on(tmp_path, own=[0.0, 0.0, 2.0])
    assert look(0, 0) == 2  # nothing to compare with yet
    clock.now += 1.0
    assert look(100, 0) == 1  # CPU 0 busy for a second, none of it this process's: one CPU is free
    clock.now += 0.1
    assert look(500, 500) == 1  # within LOOK_INTERVAL_S of the last look: not looked again
    clock.now += 1.0
    assert look(200, 100) == 2  # 2 s busy since, all of them this process's own: both free


class FakeTorch:
    def __init__(self, threads: int) -> None:
        self.threads = threads

    def get_num_threads(self) -> int:
        return self.threads

    def set_num_threads(self, threads: int) -> None:
        self.threads = threads


def test_adapting_leaves_a_count_the_user_chose_alone(tmp_path):
    share = CpuShare(tmp_path / "no-stat")  # unreadable: threads() keeps the limit
    share._threads, share._last = 1, CpuLook(share.clock(), 0.0, 0.0)  # a look just now found one free CPU
    torch = FakeTorch(2)
    share.adapt(torch, ThreadPolicy(2, "--threads", explicit=True))
    assert torch.threads == 2
    share.adapt(torch, ThreadPolicy(2, "2 CPU(s) in the affinity mask"))
    assert torch.threads == 1
    torch.set_num_threads(4)  # the user's torch.set_num_threads after dspl's
    share.adapt(torch, ThreadPolicy(2, "2 CPU(s) in the affinity mask"))
    assert torch.threads == 4


def test_a_latency_measurement_looks_at_the_cpus_afresh_while_it_waits(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(os, "sysconf", lambda _name: 100)
    share, clock, look = share_on(tmp_path, own=[0.0, 0.0, 0.0, 0.0])
    assert look(0, 0) == 2
    clock.now += 1.0
    assert look(0, 0) == 2  # an idle second: both CPUs free, and that is remembered for LOOK_INTERVAL_S
    waits = []

    def sleep(seconds: float) -> None:  # while the process waits, another one keeps CPU 1 busy
        waits.append(seconds)
        clock.now += seconds
        (tmp_path / "stat").write_text(stat_text(0, 25))

    share._set = 2  # the count adapt() last gave torch: a fresh look keeps it known
    assert share.look_now(2, sleep) == 1 and waits == [LOOK_INTERVAL_S]
    assert share._set == 2 and not share.chosen_by_user(2, ThreadPolicy(2, "2 CPU(s) in the affinity mask"))


@pytest.mark.parametrize("policy, torch_count, expected", [
    (ThreadPolicy(2, "2 CPU(s) in the affinity mask"), 2, 1),  # one CPU free now
    (ThreadPolicy(2, "--threads", explicit=True), 2, 2),  # the user's count is timed as it is
    (ThreadPolicy(2, "2 CPU(s) in the affinity mask"), 3, 3),  # torch.set_num_threads(3) by the user
    (ThreadPolicy(2, "2 CPU(s) in the affinity mask"), None, 1),  # no torch count: a TFLite interpreter's
])
def test_a_measurement_times_on_the_free_cpus_unless_the_user_chose_a_count(monkeypatch, policy, torch_count,
                                                                             expected):
    from dspl import threads

    class OneFree(CpuShare):
        def look_now(self, limit: int, sleep: Any = None) -> int:
            return min(limit, 1)

    monkeypatch.setattr(threads, "_share", OneFree())
    monkeypatch.setattr(threads, "applied_policy", lambda: policy)
    assert threads.timing_threads(torch_count) == expected
