"""Latency of repeated calls, measured and summarised one way for `stats`, `tflite-stats` and `benchmark`.

A measurement runs each call ``warmup`` times, then ``runs`` timed times; several calls are interleaved run by
run, so that load on a shared machine affects them alike. The summary: median, 90th percentile (numpy's linear
interpolation), mean and minimum in milliseconds, with the run counts, and the CPUs other processes kept busy
meanwhile (``others_busy_cpus``, from /proc/stat; None where it cannot be read): from half a CPU on, a warning
says the figures are higher than the model's on an idle machine.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import numpy as np

from dspl.errors import DsplError
from dspl.threads import look_at_cpus

logger = logging.getLogger(__name__)

WARMUP_RUNS = 5
BUSY_WARNING_CPUS = 0.5


def time_calls(calls: dict[str, Callable[[], object]], runs: int,
               warmup: int = WARMUP_RUNS) -> dict[str, dict[str, Any]]:
    """The latency summary of each call, timed interleaved (see the module docstring)."""
    if runs < 1:
        raise DsplError(f"--runs: value {runs}: expected a number >= 1")
    for call in calls.values():
        for _ in range(warmup):
            call()
    times = {name: np.empty(runs) for name in calls}
    before = look_at_cpus()
    for i in range(runs):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name][i] = (time.perf_counter() - start) * 1000.0
    after = look_at_cpus()
    others = round(before.others_busy(after), 2) if before and after else None
    if others is not None and others >= BUSY_WARNING_CPUS:
        logger.warning("other processes kept %.1f CPU(s) busy while the latency of %s was timed: the figures are "
                       "higher than on an idle machine", others, ", ".join(calls))
    return {name: {**summarize(t, warmup), "others_busy_cpus": others} for name, t in times.items()}


def summarize(times_ms: np.ndarray, warmup: int) -> dict[str, Any]:
    """Median, p90, mean and min of timed runs in milliseconds, with the numbers of runs and warm-up runs."""
    return {"median_ms": float(np.median(times_ms)), "p90_ms": float(np.percentile(times_ms, 90)),
            "mean_ms": float(np.mean(times_ms)), "min_ms": float(np.min(times_ms)), "runs": int(len(times_ms)),
            "warmup": int(warmup)}


def describe(latency: dict[str, Any]) -> str:
    """One line for a report: 'median 1.234 ms, p90 1.456 ms over 50 runs after 5 warm-up runs' (with ', on 2
    thread(s)' where the thread count is known)."""
    threads = f", on {latency['threads']} thread(s)" if "threads" in latency else ""
    return (f"median {latency['median_ms']:.3f} ms, p90 {latency['p90_ms']:.3f} ms over {latency['runs']} runs "
            f"after {latency['warmup']} warm-up runs{threads}")
