"""`dspl search` against DeepSpectrumLite's grid: the best model within a latency budget on FSDD's speakers.

FSDD split as bench/fsdd.py splits it (george, jackson and lucas: takes 0-39 train, 40-49 devel; nicolas: test),
bench/fsdd.py's configuration as the constants. The search: --trials trials of `dspl search` over backbone (five
small timm models), plot size (width and height), mel bands, learning rate and augmentation strength (the top of
the SapAugment probability range), end-to-end models in --quantize (int8 by default), a latency budget per chunk
measured here. The grid, the same compute DeepSpectrumLite's way: the space with each range cut into three values,
expanded in file order (the last key fastest), and its first --trials combinations trained, each as a one-trial
search (so trained, exported and measured by the very same code), and the best of them by devel UAR within the
budget (with a faithful quantised model: one that agrees with its float model as `dspl export` requires) picked
afterwards. Printed per side: the best feasible model's devel and test accuracy and UAR (chunks, from its
TensorBoard logs), latency, size, feasible trials and the agreement of the unfaithful ones, epochs trained and wall
time; then the rows for bench/RESULTS.md.

    python bench/search.py [--data ../shared/data/fsdd/recordings] [--work-dir DIR] [--trials 16] [--epochs 15]
                           [--max-latency-ms 1] [--quantize int8] [--smoke]

--smoke: 2 trials of 1 epoch on 3 takes per digit and speaker (a few minutes: proves the bench runs, no figures).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsdd import DEFAULT_DATA, FILE_NAME, SETTINGS, TEST_SPEAKER, TRAIN_SPEAKERS, padding_warnings_off, write_split

from dspl.errors import DsplError
from dspl.export.tflite_convert import QUANTIZATIONS
from dspl.export.verify import MIN_AGREEMENT
from dspl.quiet import set_verbosity

BACKBONES = ["resnet10t", "regnetx_002", "mobilenetv3_small_050", "mobilenetv3_small_100", "lcnet_050"]
RANGES = {"num_mel_bins": {"low": 32, "high": 64, "step": 16},
          "learning_rate": {"low": 3e-4, "high": 3e-3, "log": True},
          "da_prob_max": {"low": 0.5, "high": 1.0}}
GRID_VALUES = {"num_mel_bins": [32, 48, 64], "learning_rate": [3e-4, 1e-3, 3e-3], "da_prob_max": [0.5, 0.75, 1.0]}
"""Each range of the space cut into three values: the grid a DeepSpectrumLite user writes for it."""
SIZES = [48, 64, 96]
SMOKE_TAKES = (0, 1, 40)  # two training takes and one devel take per digit and speaker; the test speaker's too


def space(epochs: int) -> dict[str, Any]:
    """The search space: bench/fsdd.py's configuration as constants, then the searched keys."""
    values: dict[str, Any] = {key: [value] for key, value in SETTINGS.items()}
    values.update(tb_experiment=["search"], tb_run_id=["trial"], epochs=[epochs], da_prob_min=[0.5],
                  basemodel_name=BACKBONES, image_width=SIZES, image_height=SIZES, **RANGES)
    return values


def grid(epochs: int) -> list[dict[str, Any]]:
    """The equivalent grid's combinations in DeepSpectrumLite's order (file order, the last key fastest)."""
    lists = {key: (GRID_VALUES[key] if key in GRID_VALUES else value) for key, value in space(epochs).items()}
    names = list(lists)
    return [dict(zip(names, values)) for values in itertools.product(*(lists[name] for name in names))]


def smoke_data(data: Path, work_dir: Path) -> Path:
    """A folder of links to a few takes per digit and speaker (the smoke run's data)."""
    folder = work_dir / "smoke_recordings"
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(data.glob("*.wav")):
        match = FILE_NAME.fullmatch(path.name)
        if match and match.group(2) in (*TRAIN_SPEAKERS, TEST_SPEAKER) and int(match.group(3)) in SMOKE_TAKES:
            link = folder / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    return folder


@dataclass
class Side:
    """What one side (search or grid) found: its rows (trials.csv lines as dicts) and its wall time."""

    name: str
    rows: list[dict[str, Any]]
    minutes: float


def run_search(name: str, values: dict[str, Any], trials: int, work: Path, data: tuple[Path, Path],
               budget_ms: float | None, quantize: str) -> list[dict[str, Any]]:
    """One `dspl search` (the workflow a command runs) of ``values`` as a space; its trials.csv rows."""
    from rich.console import Console

    from dspl.workflows.search import SearchOptions, search
    from dspl.workflows.search_summary import Budget, read_summary
    from dspl.workflows.train import TrainingData

    space_file = work / f"{name}.json"
    space_file.write_text(json.dumps(values, indent=1), encoding="utf-8")
    options = SearchOptions(trials=trials, budget=Budget(budget_ms), quantize=quantize, study=name)
    try:
        result = search(TrainingData(*data), work / "output", space_file, work / "class_config.json", options,
                        Console())
        folder = result.summary_dir
    except DsplError as exc:  # e.g. no trial within budget: the summary is written all the same
        print(f"{name}: {exc}")
        folder = work / "output" / "search" / name
    _, rows = read_summary(folder)
    logs = work / "output" / "logs" / values["tb_experiment"][0]
    run = values["tb_run_id"][0]
    return [{**row.__dict__, "log_dir": logs / f"{run}_config_{row.number if row.retry_of is None else row.retry_of}"}
            for row in rows]


def figures(row: dict[str, Any]) -> dict[str, Any]:
    """A trial's chunk-level devel and test accuracy and UAR (percent) from its run's TensorBoard logs, and the
    epochs it trained (pruned trials included)."""
    from dspl.report.curves import read_scalars

    scalars = read_scalars(row["log_dir"])
    last = {tag: 100 * points[-1][1] for tag, points in scalars.items() if points}
    return {"devel_accuracy": last.get("val/accuracy"), "devel_uar": last.get("val/uar"),
            "test_accuracy": last.get("test/accuracy"), "test_uar": last.get("test/uar"),
            "epochs": len(scalars.get("val/uar", []))}


def feasible(rows: list[dict[str, Any]], budget_ms: float) -> list[dict[str, Any]]:
    """The complete trials within the budget whose quantised model is faithful (as `dspl export` requires)."""
    return [r for r in rows if r["state"] == "complete" and r["latency_ms"] <= budget_ms
            and r["agreement"] >= MIN_AGREEMENT]


def best(rows: list[dict[str, Any]], budget_ms: float) -> dict[str, Any] | None:
    """The feasible trial with the highest devel UAR (then the fastest)."""
    return max(feasible(rows, budget_ms), key=lambda r: (r["metric"], -r["latency_ms"]), default=None)


def describe(side: Side, budget_ms: float, quantize: str) -> str:
    """One line per side for the console and one RESULTS.md cell."""
    complete = [r for r in side.rows if r["state"] == "complete"]
    epochs = sum(figures(r)["epochs"] for r in side.rows)
    chosen = best(side.rows, budget_ms)
    unfaithful = ", ".join(f"{100 * r['agreement']:.1f} %" for r in complete if r["agreement"] < MIN_AGREEMENT)
    head = (f"{len(feasible(side.rows, budget_ms))} of {len(side.rows)} trials within {budget_ms:g} ms with a "
            f"faithful {quantize} model (unfaithful ones' agreement: {unfaithful or 'none'}), {epochs} epochs, "
            f"{side.minutes:.0f} min")
    if chosen is None:
        return f"{head}; none within budget"
    f = figures(chosen)
    params = ", ".join(f"{k} {v}" for k, v in chosen["params"].items())
    return (f"{head}; best: {params}: devel acc {f['devel_accuracy']:.1f} % (UAR {f['devel_uar']:.1f}), test acc "
            f"{f['test_accuracy']:.1f} % (UAR {f['test_uar']:.1f}), {chosen['latency_ms']:.2f} ms, "
            f"{chosen['size_kb']:.0f} kB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FSDD recordings directory")
    parser.add_argument("--work-dir", type=Path, default=None, help="where links, configs and models go")
    parser.add_argument("--trials", type=int, default=16, help="trials of the search = grid combinations trained")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-latency-ms", type=float, default=1.0,
                        help="latency budget per chunk (the smoke run's int8 models took 0.7-0.9 ms at 48-64 px "
                             "on a 2-core CPU: 1 ms leaves the larger plots and backbones out)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="int8", help="the models' quantisation")
    parser.add_argument("--smoke", action="store_true", help="2 trials of 1 epoch on a few files: no figures")
    args = parser.parse_args()
    set_verbosity(0)  # as a command without -v: no native TensorFlow chatter between the rows
    padding_warnings_off()
    if args.smoke:
        args.trials, args.epochs = 2, 1

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="dspl_search_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    recordings = smoke_data(args.data, work) if args.smoke else args.data
    audio, labels, counts = write_split(recordings, work, devel_from_take=40)
    (work / "class_config.json").write_text(json.dumps({str(d): f"digit {d}" for d in range(10)}), encoding="utf-8")
    print(f"work dir {work}: {counts['train']} train, {counts['devel']} devel, {counts['test']} test files; "
          f"{args.trials} trials of {args.epochs} epochs, {args.quantize} budget {args.max_latency_ms:g} ms per chunk")

    start = time.perf_counter()
    searched = Side("search", run_search("search", space(args.epochs), args.trials, work, (audio, labels),
                                         args.max_latency_ms, args.quantize), (time.perf_counter() - start) / 60)
    start, rows = time.perf_counter(), []
    for index, combination in enumerate(grid(args.epochs)[:args.trials]):
        values = {**{key: [value] for key, value in combination.items()}, "tb_run_id": [f"grid{index}"]}
        rows += [{**row, "params": {key: combination[key] for key in (*GRID_VALUES, "basemodel_name", "image_width",
                                                                      "image_height")}}
                 for row in run_search(f"grid{index}", values, 1, work, (audio, labels), None,
                                            args.quantize)]
    gridded = Side("grid", rows, (time.perf_counter() - start) / 60)

    print(f"\nFSDD (test speaker nicolas), {args.quantize} end-to-end models, latency measured here:")
    for side in (searched, gridded):
        print(f"  {side.name}: {describe(side, args.max_latency_ms, args.quantize)}")
    if not args.smoke:
        print("\nrows for bench/RESULTS.md (with the date, the commit and the machine):")
        for side in (searched, gridded):
            print(f"| {side.name}, {args.trials} trials of {args.epochs} epochs, budget {args.max_latency_ms:g} ms "
                  f"{args.quantize} | {describe(side, args.max_latency_ms, args.quantize)} |")


if __name__ == "__main__":
    main()
