"""dspl.latency: the one latency measurement, and its warning when other processes kept CPUs busy meanwhile."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from dspl import latency
from dspl.errors import DsplError


def busy_work() -> int:
    return sum(range(200_000))  # a few ms of this process's own CPU time


def test_a_process_spinning_on_one_of_our_cpus_is_seen_and_named(caplog):
    cpu = max(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nprint('ready', "
                                "flush=True)\nwhile True:\n    pass\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert spinner.stdout.readline() == "ready\n"
        with caplog.at_level(logging.WARNING, logger="dspl.latency"):
            summary = latency.time_calls({"a": busy_work, "b": busy_work}, runs=150, warmup=1)
    finally:
        spinner.kill()
        spinner.wait()
    assert summary["a"]["others_busy_cpus"] == summary["b"]["others_busy_cpus"] >= latency.BUSY_WARNING_CPUS
    assert [r.getMessage().split(" CPU(s)")[1] for r in caplog.records] == [
        " busy while the latency of a, b was timed: the figures are higher than on an idle machine"]
    assert summary["a"]["runs"] == 150 and summary["a"]["median_ms"] > 0


def test_without_proc_stat_the_load_is_unknown_and_nothing_is_said(monkeypatch, caplog):
    monkeypatch.setattr(latency, "look_at_cpus", lambda: None)
    with caplog.at_level(logging.WARNING, logger="dspl.latency"):
        summary = latency.time_calls({"a": busy_work}, runs=3, warmup=0)
    assert summary["a"]["others_busy_cpus"] is None and not caplog.records
    with pytest.raises(DsplError, match="--runs: value 0: expected a number >= 1"):
        latency.time_calls({"a": busy_work}, runs=0)


def test_a_description_names_the_thread_count_where_it_is_known():
    summary = latency.summarize(np.array([1.0, 2.0, 3.0]), warmup=5)
    assert latency.describe(summary) == "median 2.000 ms, p90 2.800 ms over 3 runs after 5 warm-up runs"
    assert latency.describe({**summary, "threads": 1}).endswith("after 5 warm-up runs, on 1 thread(s)")
