"""The Pareto plot of a search: devel metric against per-chunk latency, one labelled point per trial, as a PNG.

Trials on the Pareto front are filled and coloured, the other feasible ones grey, infeasible trials (over a budget,
or quantised unfaithfully) drawn as crosses; a point's area grows with the model's size; the latency budget is a
dashed line and a highlighted trial (the model a report is about) gets a ring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dspl.files import atomic_path

FRONT_COLOUR = "#d62728"
OTHER_COLOUR = "#7f7f7f"


@dataclass(frozen=True)
class ParetoPoint:
    """One finished trial as the plot shows it: its number, devel metric, latency (ms), size (kB), whether it
    meets the budget and whether it is on the Pareto front."""

    number: int
    metric: float
    latency_ms: float
    size_kb: float
    feasible: bool
    on_front: bool


def _area(size_kb: float, largest_kb: float) -> float:
    """Marker area (points²) from 20 to 200, by size relative to the largest model."""
    return 20.0 + 180.0 * size_kb / largest_kb if largest_kb > 0 else 60.0


def plot_pareto(points: list[ParetoPoint], path: Path, metric_label: str, max_latency_ms: float | None = None,
                max_size_kb: float | None = None, highlight: int | None = None) -> Path:
    """Draw the trials' devel metric over latency into ``path`` (written atomically) and return it.

    ``metric_label`` names the y axis (e.g. 'devel UAR (%)'); the budgets go into the legend and, for latency,
    onto the plot; ``highlight`` is the trial number to ring.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axis = figure.subplots()
    largest = max((p.size_kb for p in points), default=0.0)
    groups = (("Pareto front (feasible)", [p for p in points if p.on_front], FRONT_COLOUR, "o"),
              ("feasible", [p for p in points if p.feasible and not p.on_front], OTHER_COLOUR, "o"),
              ("infeasible (over budget or unfaithful)", [p for p in points if not p.feasible], OTHER_COLOUR, "x"))
    for label, group, colour, marker in groups:
        if group:
            axis.scatter([p.latency_ms for p in group], [p.metric for p in group], label=label, color=colour,
                         marker=marker, s=[_area(p.size_kb, largest) for p in group], alpha=0.8, zorder=3)
    for point in points:
        axis.annotate(f"#{point.number}", (point.latency_ms, point.metric), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)
    chosen = [p for p in points if p.number == highlight]
    if chosen:
        axis.scatter([chosen[0].latency_ms], [chosen[0].metric], s=400, facecolors="none", edgecolors="black",
                     linewidths=1.5, label=f"this model (#{highlight})", zorder=4)
    if max_latency_ms is not None:
        axis.axvline(max_latency_ms, color="black", linestyle="--", linewidth=1,
                     label=f"latency budget {max_latency_ms:g} ms")
    if max_size_kb is not None:  # no axis of its own: it decides the markers, and the legend says so
        axis.plot([], [], " ", label=f"size budget {max_size_kb:g} kB")
    axis.set_xlabel("latency per chunk, median (ms)")
    axis.set_ylabel(metric_label)
    axis.set_title("trials of the search (area: model size)", fontsize=10)
    axis.grid(alpha=0.3)
    if points:
        axis.legend(fontsize=8, loc="best")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=90, format="png")
    return path
