"""What a search leaves in OUT/search/<study>/: trials.csv, pareto.csv, pareto.png, search.json and best/; and
what `dspl report` reads back from it. Nothing here needs Optuna: the tables are made of `TrialRow`s.

Every worker rewrites the tables and the plot after each of its trials (atomically: readers see one worker's
complete snapshot). `trials.csv` holds every trial a worker started: its parameters, devel (and
test) metric, latency, size, the quantised model's agreement with its float model, state, feasibility (within
budget and faithfully quantised), whether it is on the Pareto front (Optuna's `best_trials`, among
trials within budget), its model and .tflite, and why it failed. `search.json` says what the search was (study,
storage, metric, budget, quantisation, trials) and which trial is best: the feasible one with the highest devel
metric (then the fastest, then the smallest). Once no trial is left to run, best/ becomes a copy of that trial's
model folder (model.h5, its export and its report page; not the checkpoints).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dspl.config import parse_json
from dspl.errors import DsplError
from dspl.export import verify
from dspl.files import commit, exclusive_lock, regular_file, remove, staging_dir, write_atomically
from dspl.report.pareto import ParetoPoint, plot_pareto

TRIALS_FILE, PARETO_FILE, PLOT_FILE, INFO_FILE, BEST_DIR = "trials.csv", "pareto.csv", "pareto.png", "search.json", \
    "best"
LOCK_FILE = ".dspl-search.lock"
MARKER_FILE = "search_trial.json"
"""Written beside a trial's model: which study and trial it is, and where the study's summary is (relative to the
model's folder)."""


@dataclass(frozen=True)
class Budget:
    """The device budget: the largest median latency per chunk (ms) and end-to-end model size (kB) allowed."""

    max_latency_ms: float | None = None
    max_size_kb: float | None = None

    def constraints(self, latency_ms: float, size_kb: float) -> dict[str, float]:
        """Optuna constraint values (<= 0: within budget) of the budgets that are set."""
        values = {"latency_ms": None if self.max_latency_ms is None else latency_ms - self.max_latency_ms,
                  "size_kb": None if self.max_size_kb is None else size_kb - self.max_size_kb}
        return {name: value for name, value in values.items() if value is not None}

    @property
    def is_set(self) -> bool:
        """Whether any budget limits the trials."""
        return self.max_latency_ms is not None or self.max_size_kb is not None

    def within(self, latency_ms: float, size_kb: float) -> bool:
        """Whether a model of this latency and size meets every budget that is set."""
        return all(value <= 0 for value in self.constraints(latency_ms, size_kb).values())

    def describe(self) -> str:
        """'<= 5 ms, <= 1500 kB' (the budgets that are set), or 'none'."""
        parts = [f"<= {self.max_latency_ms:g} ms" if self.max_latency_ms is not None else "",
                 f"<= {self.max_size_kb:g} kB" if self.max_size_kb is not None else ""]
        return ", ".join(p for p in parts if p) or "none"


@dataclass(frozen=True)
class TrialRow:
    """One started trial as trials.csv shows it (figures None where the trial has none)."""

    number: int
    state: str
    retry_of: int | None
    params: dict[str, Any]
    metric: float | None = None
    test_metric: float | None = None
    latency_ms: float | None = None
    size_kb: float | None = None
    agreement: float | None = None
    feasible: bool | None = None
    pareto: bool = False
    model: str = ""
    tflite: str = ""
    error: str = ""

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    @property
    def faithful(self) -> bool:
        """Whether its quantised model agrees with its float model as `dspl export` requires (True where no
        agreement was recorded)."""
        return self.agreement is None or verify.faithful(self.agreement)


@dataclass(frozen=True)
class SearchInfo:
    """What a search is (search.json): study, storage, the devel metric's name, budget, quantisation, trials
    queued, and the best trial's number (None while no trial is within budget)."""

    study: str
    storage: str
    metric: str
    budget: Budget
    quantize: str
    trials: int
    best: int | None = None
    searched: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps({**asdict(self), "budget": asdict(self.budget)}, indent=2).encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SearchInfo:
        return cls(**{**data, "budget": Budget(**data["budget"])})


def best_row(rows: list[TrialRow]) -> TrialRow | None:
    """The feasible complete trial with the highest devel metric (then the lowest latency, then size), or None."""
    feasible = [row for row in rows if row.complete and row.feasible]
    return max(feasible, key=lambda r: (r.metric, -r.latency_ms, -r.size_kb), default=None)


def fastest_row(rows: list[TrialRow]) -> TrialRow | None:
    """The complete trial with the lowest latency (then size), or None."""
    return min((row for row in rows if row.complete), key=lambda r: (r.latency_ms, r.size_kb), default=None)


def _csv(header: list[str], lines: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in line] for line in lines)
    return buffer.getvalue().encode()


def _table(rows: list[TrialRow], info: SearchInfo) -> bytes:
    header = ["trial", "state", "retry_of", *info.searched, f"devel_{info.metric}", f"test_{info.metric}",
              "latency_ms", "size_kb", "agreement", "feasible", "pareto", "model", "tflite", "error"]
    lines = [[row.number, row.state, row.retry_of, *(row.params.get(k) for k in info.searched), row.metric,
              row.test_metric, row.latency_ms, row.size_kb, row.agreement, row.feasible, row.pareto, row.model,
              row.tflite, row.error] for row in rows]
    return _csv(header, lines)


def metric_label(metric: str) -> str:
    """The devel metric as axes and tables name it."""
    return f"devel {metric.upper()}" + (" (%)" if metric == "uar" else "")


def shown_metric(metric: str, value: float) -> float:
    """A metric value as people read it: UAR in percent, CCC as it is."""
    return 100.0 * value if metric == "uar" else value


def describe_metric(metric: str, value: float) -> str:
    """'devel UAR 81.25 %' or 'devel CCC 0.6120', for progress lines."""
    return f"devel {metric.upper()} " + (f"{100.0 * value:.2f} %" if metric == "uar" else f"{value:.4f}")


def plot_points(rows: list[TrialRow], info: SearchInfo) -> list[ParetoPoint]:
    """The plot's points of the complete trials, the metric as people read it."""
    return [ParetoPoint(row.number, shown_metric(info.metric, row.metric), row.latency_ms, row.size_kb,
                        bool(row.feasible), row.pareto) for row in rows if row.complete]


def write_summary(rows: list[TrialRow], info: SearchInfo, folder: Path) -> None:
    """Write trials.csv, pareto.csv, pareto.png and search.json into ``folder`` (each atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / TRIALS_FILE, _table(rows, info))
    write_atomically(folder / PARETO_FILE, _table([row for row in rows if row.pareto], info))
    plot_pareto(plot_points(rows, info), folder / PLOT_FILE, metric_label(info.metric), info.budget.max_latency_ms,
                info.budget.max_size_kb)
    write_atomically(folder / INFO_FILE, info.to_json())


def read_summary(folder: Path) -> tuple[SearchInfo, list[TrialRow]]:
    """The search.json and trials.csv of a summary folder (for a model's report); a DsplError if they are not
    readable (a FIFO or device in their place is refused unopened: it would wait for a writer)."""

    def number(text: str) -> float | None:
        return float(text) if text else None

    try:
        info = SearchInfo.from_json(parse_json(regular_file(folder / INFO_FILE, "search summary").read_bytes(),
                                               str(folder / INFO_FILE)))
        with regular_file(folder / TRIALS_FILE, "search summary").open(newline="", encoding="utf-8") as handle:
            lines = list(csv.DictReader(handle))
        rows = [TrialRow(int(line["trial"]), line["state"], int(line["retry_of"]) if line["retry_of"] else None,
                         {k: line[k] for k in info.searched}, number(line[f"devel_{info.metric}"]),
                         number(line[f"test_{info.metric}"]), number(line["latency_ms"]), number(line["size_kb"]),
                         number(line.get("agreement", "")), line["feasible"] == "True" if line["feasible"] else None,
                         line["pareto"] == "True", line["model"], line["tflite"], line["error"]) for line in lines]
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as exc:
        raise DsplError(f"{folder}: not a readable search summary ({exc})") from None
    lacking = next((row for row in rows if row.complete and None in (row.metric, row.latency_ms, row.size_kb)), None)
    if lacking is not None:  # the plot and the best trial need all three
        raise DsplError(f"{folder}: not a readable search summary (trial {lacking.number} is complete but lacks its "
                        "devel metric, latency or size)")
    return info, rows


def published_best(folder: Path) -> int | None:
    """The number of the trial whose model folder ``folder``/best holds (None when there is none)."""
    marker = folder / BEST_DIR / MARKER_FILE
    try:
        return int(parse_json(marker.read_bytes(), str(marker))["trial"])
    except (DsplError, OSError, ValueError, KeyError, TypeError):
        return None


def publish_best(row: TrialRow, folder: Path) -> Path | None:
    """Replace ``folder``/best with a copy of the best trial's model folder (no checkpoints), its marker pointing
    at ``folder``; returns best/, or None when another worker is publishing it right now (the same trial)."""
    with ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(folder / LOCK_FILE, "another worker publishing the best model"))
        except DsplError:
            return None
        stage = staging_dir(folder)
        stack.callback(remove, stage)
        copy = stage / BEST_DIR
        shutil.copytree(Path(row.model).parent, copy, ignore=shutil.ignore_patterns("*.ckpt", ".dspl-*", ".*.tmp"))
        marker = parse_json((copy / MARKER_FILE).read_bytes(), str(Path(row.model).parent / MARKER_FILE))
        marker["summary"] = os.path.relpath(folder.resolve(), (folder / BEST_DIR).resolve())
        write_atomically(copy / MARKER_FILE, json.dumps(marker, indent=2).encode())
        commit({copy: folder / BEST_DIR})
    return folder / BEST_DIR
