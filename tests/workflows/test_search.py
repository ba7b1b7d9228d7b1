"""`dspl search` end to end on the example set with tiny models (32-px plots, one epoch, fp32 exports): every
promised file, the budget met when re-measured, the report's Pareto plot in headless Chromium, two workers at
once, a worker killed mid-trial, and each bad input in one line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import kill_when, one_error_line, output_of, read_csv, render, second_record_data, spawn

from dspl.cli.main import cli
from dspl.config import load_class_config, load_space
from dspl.errors import DsplError
from dspl.report.curves import read_scalars
from dspl.workflows import search_trial
from dspl.workflows.report import run_log_dir

LATENCY_BUDGET_MS, SIZE_BUDGET_KB = 1000.0, 5000.0
DEADLINE_S = 600.0
STUDY = "example_run"


def write_space(folder: Path, example_dir: Path, **changes: Any) -> Path:
    """The example configuration as a tiny space: two backbones, a log range of learning rates, a dropout range."""
    values = json.loads((example_dir / "hp_config.json").read_text())
    values.update({"basemodel_name": ["test_efficientnet", "test_resnet"], "image_width": [32], "image_height": [32],
                   "epochs": [1], "batch_size": [8], "num_units": [8],
                   "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.5},
                   **changes})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "space.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


def arguments(example_dir: Path, out: Path, space: Path, *extra: str, quantize: str = "fp32") -> list[str]:
    return ["search", "-d", str(example_dir / "audio"), "-md", str(out), "-hc", str(space),
            "-cc", str(example_dir / "class_config.json"), "-l", str(example_dir / "label.csv"), "--quantize", quantize,
            *extra]


# --- a search of two trials: every file, the budget, the report -----------------------------------------------------

@pytest.fixture(scope="module")
def searched(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(output folder, space file, output) of a finished two-trial search within a generous budget."""
    root = tmp_path_factory.mktemp("search")
    space, out = write_space(root, example_dir), root / "out"
    result = CliRunner().invoke(cli, arguments(example_dir, out, space, "--trials", "2", "--max-latency-ms",
                                               str(LATENCY_BUDGET_MS), "--max-size-kb", str(SIZE_BUDGET_KB)))
    assert result.exit_code == 0, result.output
    return out, space, result.output


@pytest.mark.slow
def test_a_search_writes_every_promised_file(searched):
    out, _, output = searched
    summary = out / "search" / STUDY
    assert {p.name for p in summary.iterdir()} >= {"trials.csv", "pareto.csv", "pareto.png", "search.json", "best"}
    rows = read_csv(summary / "trials.csv")
    assert [(row["trial"], row["state"]) for row in rows] == [("0", "complete"), ("1", "complete")]
    assert set(rows[0]) == {"trial", "state", "retry_of", "basemodel_name", "learning_rate", "dropout", "devel_uar",
                            "test_uar", "latency_ms", "size_kb", "agreement", "feasible", "pareto", "model", "tflite",
                            "error"}
    assert {row["trial"] for row in read_csv(summary / "pareto.csv")} <= {"0", "1"}
    first = [line for line in output.splitlines() if line.startswith("[")][0]
    assert first.startswith("[1/2] trial 0: devel UAR ")
    assert " kB, within budget; best so far: " in first or " kB, over budget; best so far: " in first
    assert "; best so far: trial " in output
    for row in rows:  # the same outputs as `train` under -md
        model = Path(row["model"])
        assert model == out / "models" / "example" / f"run_config_{row['trial']}" / "model.h5" and model.is_file()
        assert (model.parent / "model.ckpt").is_file()
        assert any((out / "logs" / "example" / f"run_config_{row['trial']}").glob("events.out.tfevents.*"))
        assert Path(row["tflite"]) == model.parent / "export" / "model_end_to_end_fp32.tflite"
        assert 0.98 <= float(row["agreement"]) <= 1.0  # the end-to-end model's with PyTorch
    info = json.loads((summary / "search.json").read_text())
    best = summary / "best"
    assert {p.name for p in best.iterdir()} == {"model.h5", "export", "report", "search_trial.json"}
    exported = best / "export" / "model_end_to_end_fp32.tflite"
    assert exported.read_bytes() == Path(rows[info["best"]]["tflite"]).read_bytes()


@pytest.mark.slow
def test_every_trial_is_sampled_inside_the_space(searched):
    out, space_file, _ = searched
    space = load_space(space_file)
    for row in read_csv(out / "search" / STUDY / "trials.csv"):
        assert row["basemodel_name"] in space.choices["basemodel_name"]
        for name in ("learning_rate", "dropout"):
            assert space.ranges[name].contains(float(row[name]))


@pytest.mark.slow
def test_the_best_model_meets_the_budget_when_measured_again(searched):
    from dspl.export.tflite_stats import measure_latency

    out, _, _ = searched
    info = json.loads((out / "search" / STUDY / "search.json").read_text())
    tflite = out / "search" / STUDY / "best" / "export" / "model_end_to_end_fp32.tflite"
    assert info["best"] is not None and info["budget"] == {"max_latency_ms": LATENCY_BUDGET_MS,
                                                            "max_size_kb": SIZE_BUDGET_KB}
    assert measure_latency(tflite)["median_ms"] <= LATENCY_BUDGET_MS
    assert tflite.stat().st_size / 1000 <= SIZE_BUDGET_KB


@pytest.mark.slow
def test_the_best_models_report_shows_the_pareto_plot_in_chromium(searched, tmp_path):
    out, _, _ = searched
    info = json.loads((out / "search" / STUDY / "search.json").read_text())
    model = out / "models" / "example" / f"run_config_{info['best']}" / "model.h5"
    for page in (model.parent / "report" / "index.html", out / "search" / STUDY / "best" / "report" / "index.html"):
        html = page.read_text(encoding="utf-8")
        assert "<h2>Search</h2>" in html and f"Trial {info['best']} of study &#x27;{STUDY}&#x27;" in html
        images, _ = render(page, tmp_path / page.parent.parent.name)
        assert "pareto.png" in [src for src, _, _ in images]
        assert all(complete and width > 0 for _, complete, width in images), images


@pytest.mark.slow
def test_a_rerun_of_a_finished_search_trains_nothing_again(searched, example_dir):
    out, space, _ = searched
    before = (out / "search" / STUDY / "trials.csv").read_bytes()
    result = CliRunner().invoke(cli, arguments(example_dir, out, space, "--trials", "2", "--max-latency-ms",
                                               str(LATENCY_BUDGET_MS), "--max-size-kb", str(SIZE_BUDGET_KB)))
    assert result.exit_code == 0, result.output
    assert "joined" in result.output and "[1/2]" not in result.output
    assert (out / "search" / STUDY / "trials.csv").read_bytes() == before


@pytest.mark.slow
def test_a_trial_whose_export_fails_keeps_its_devel_metric_and_model(example_dir, tmp_path, monkeypatch):
    """An export that fails (here: the SavedModel does not match ONNX) fails the trial; the row still says how good
    the model was and where it is. The export was asked for the study's quantisation (any of `dspl export`'s)."""
    refusal = "SavedModel vs ONNX: max |Δ score| 0.31 against the previous step exceeds 0.0001"
    asked = []

    def refuse(_model: Path, _out: Path, options: Any) -> None:
        asked.append((options.formats, options.quantize, options.end_to_end))
        raise DsplError(refusal)

    monkeypatch.setattr(search_trial, "export_model", refuse)
    space, out = write_space(tmp_path, example_dir), tmp_path / "out"
    CliRunner().invoke(cli, arguments(example_dir, out, space, "--trials", "1", quantize="dynamic"))
    assert asked == [(("tflite",), ("dynamic",), True)]
    (row,) = read_csv(out / "search" / STUDY / "trials.csv")
    assert (row["state"], row["error"], row["latency_ms"], row["tflite"]) == ("failed", refusal, "", "")
    assert 0.0 <= float(row["devel_uar"]) <= 100.0
    assert row["model"] == str(out / "models" / "example" / "run_config_0" / "model.h5")


@pytest.mark.slow
def test_a_trial_whose_quantised_model_is_unfaithful_is_complete_but_infeasible(example_dir, tmp_path, monkeypatch):
    """A model whose quantised scores agree with its float ones too rarely (`dspl export` would refuse it) is a
    complete trial that violates a constraint, so the sampler learns from it; its export is removed, its figures
    kept, and a study without a faithful trial ends saying so."""
    import optuna

    from dspl.export.report import ExportReport
    from dspl.workflows.search_study import open_storage

    monkeypatch.setattr(ExportReport, "agreement", lambda self, quantize: 0.9)
    space, out = write_space(tmp_path, example_dir), tmp_path / "out"
    result = CliRunner().invoke(cli, arguments(example_dir, out, space, "--trials", "1"))
    (row,) = read_csv(out / "search" / STUDY / "trials.csv")
    assert (row["state"], row["agreement"], row["feasible"], row["tflite"], row["error"]) == \
        ("complete", "0.9", "False", "", "")
    assert float(row["latency_ms"]) > 0 and float(row["size_kb"]) > 0 and 0.0 <= float(row["devel_uar"]) <= 1.0
    model = out / "models" / "example" / "run_config_0"
    assert (model / "model.h5").is_file() and not (model / "export").exists()
    (line,) = [line for line in result.output.splitlines() if line.startswith("[1/1] trial 0: ")]
    assert " kB; infeasible: its fp32 model agrees with the float model on 90.0 % of the chunks, below 98 % (export " \
           "removed)" in line and "budget" not in line  # no budget was set
    one_error_line(result, f"study '{STUDY}': no trial's fp32 model agrees with its float model on 98 % of the chunks "
                           "as `dspl export` requires (the closest, trial 0: 90.0 %); search other backbones; "
                           f"see {out.resolve() / 'search' / STUDY / 'trials.csv'}")
    study = optuna.load_study(study_name=STUDY, storage=open_storage(str(out / "search" / "journal.log")))
    assert study.trials[0].constraints == pytest.approx({"agreement": 0.08})


@pytest.mark.parametrize(("quantize", "remedy"),
                         [("int8", "quantise less (--quantize dynamic or fp16 or fp32) or search"),
                          ("dynamic", "quantise less (--quantize fp16 or fp32) or search"),
                          ("fp16", "quantise less (--quantize fp32) or search"),
                          ("fp32", "search")])
def test_a_study_without_a_faithful_model_is_pointed_only_at_lighter_quantisations(quantize, remedy, tmp_path):
    from dspl.workflows.search import _why_no_best
    from dspl.workflows.search_summary import Budget, SearchInfo, TrialRow

    rows = [TrialRow(number, "complete", None, {}, 0.9, latency_ms=1.0, size_kb=10.0, agreement=agreement)
            for number, agreement in ((0, 0.9), (1, 0.95))]
    info = SearchInfo(STUDY, "journal.log", "uar", Budget(5.0), quantize, 2)
    assert _why_no_best(rows, info, tmp_path / "trials.csv") == (
        f"study '{STUDY}': no trial's {quantize} model agrees with its float model on 98 % of the chunks as `dspl "
        f"export` requires (the closest, trial 1: 95.0 %); {remedy} other backbones; see {tmp_path / 'trials.csv'}")


def test_a_study_whose_trials_within_budget_are_unfaithful_says_so_beside_the_fastest_faithful_one(tmp_path):
    """Faster trials whose int8 model failed the agreement check are not hidden behind 'the fastest'."""
    from dspl.workflows.search import _why_no_best
    from dspl.workflows.search_summary import Budget, SearchInfo, TrialRow

    rows = [TrialRow(number, "complete", None, {}, 0.9, latency_ms=latency, size_kb=10.0, agreement=agreement)
            for number, latency, agreement in ((0, 1.2, 0.961), (1, 1.7, 0.914), (2, 2.1, 1.0), (3, 2.5, 0.99),
                                               (4, 3.0, 0.5))]
    info = SearchInfo(STUDY, "journal.log", "uar", Budget(2.0), "int8", 5)
    assert _why_no_best(rows, info, tmp_path / "trials.csv") == (
        f"study '{STUDY}': no trial met the budget (<= 2 ms) with a faithful int8 model; the fastest faithful trial, "
        "2, takes 2.1 ms per chunk and 10 kB; 2 within the budget agree with their float models on less than 98 % "
        f"of the chunks (the closest, trial 0: 96.1 %); see {tmp_path / 'trials.csv'}")


def test_the_library_refuses_a_quantisation_the_exporter_does_not_know(tmp_path):
    """A notebook calling search() gets the check `dspl search --quantize` has, before anything is written."""
    from dspl.workflows.search import SearchOptions, search
    from dspl.workflows.train import TrainingData

    with pytest.raises(DsplError) as error:
        search(TrainingData(tmp_path, tmp_path / "label.csv"), tmp_path / "out", tmp_path / "space.json",
               tmp_path / "class_config.json", SearchOptions(quantize="int4"))
    assert str(error.value) == "--quantize: value 'int4': expected one of fp32, fp16, dynamic, int8"
    assert not (tmp_path / "out").exists()


# --- pruning -------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_pruned_trial_stops_after_the_epoch_its_pruner_prunes_and_keeps_no_checkpoint(example_dir, tmp_path):
    import optuna

    from dspl.workflows.search_summary import Budget
    from dspl.workflows.search_trial import TrialSetup, run_trial
    from dspl.workflows.train import TrainingData

    space = load_space(write_space(tmp_path, example_dir, epochs=[3]))
    twin = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    setup = TrialSetup(space, load_class_config(example_dir / "class_config.json"),
                       TrainingData(example_dir / "audio", example_dir / "label.csv"), tmp_path / "out", Budget(),
                       "fp32", "s", tmp_path / "out" / "search" / "s")
    devel_trial = twin.ask()
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        run_trial(study.ask(), devel_trial, setup)
    assert list(twin.get_trials()[0].intermediate_values) == [0]
    folder = tmp_path / "out" / "models" / "example" / "run_config_0"
    assert not (folder / "last.ckpt").exists() and not (folder / "model.h5").exists()


def test_a_pruned_trial_keeps_its_last_devel_figure_and_why_in_its_row():
    from types import SimpleNamespace

    import optuna

    from dspl.workflows.search import _keep_pruned_figures, trial_rows

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize", "minimize"])
    twin = optuna.create_study(storage=storage, study_name="twin", direction="maximize")
    trial, devel_trial = study.ask({"lr": optuna.distributions.FloatDistribution(0.001, 0.1)}), twin.ask()
    devel_trial.report(0.5, 0)
    devel_trial.report(0.25, 1)
    _keep_pruned_figures(SimpleNamespace(storage=storage), trial, devel_trial, "devel UAR after epoch 2 is low")
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    [row] = trial_rows(study, ("lr",))
    assert (row.state, row.metric, row.error, row.feasible) == ("pruned", 0.25, "pruned: devel UAR after epoch 2 is "
                                                                "low", None)


# --- many workers, one study ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_workers_started_at_once_complete_exactly_the_trials_asked_for(example_dir, tmp_path):
    space, out = write_space(tmp_path, example_dir), tmp_path / "out"
    workers = [spawn(*arguments(example_dir, out, space, "--trials", "3")) for _ in range(2)]
    codes = [worker.wait(timeout=DEADLINE_S) for worker in workers]
    logs = [output_of(worker) for worker in workers]
    assert codes == [0, 0], logs
    rows = read_csv(out / "search" / STUDY / "trials.csv")
    assert [(row["trial"], row["state"]) for row in rows] == [("0", "complete"), ("1", "complete"), ("2", "complete")]
    assert len({row["model"] for row in rows}) == 3
    ran = [line.split(":")[0].split()[-1] for log in logs for line in log.splitlines() if line.startswith("[")]
    assert sorted(ran) == ["0", "1", "2"]  # each trial ran in one worker only
    assert sum("created" in log for log in logs) == 1 and sum("joined" in log for log in logs) == 1
    for row in rows:  # and was trained by one process: TensorBoard's event files name it
        events = (out / "logs" / "example" / f"run_config_{row['trial']}").glob("events.out.tfevents.*")
        assert len({path.name.split(".")[-2] for path in events}) == 1


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_by_the_rerun(example_dir, tmp_path):
    """The killed trial resumes from its epoch checkpoint in a retry; the study then ends with the one line that no
    trial met the (impossible) size budget, naming the fastest trial."""
    space, out = write_space(tmp_path, example_dir, epochs=[2], basemodel_name=["test_efficientnet"]), tmp_path / "out"
    args = arguments(example_dir, out, space, "--trials", "1", "--max-size-kb", "1")
    worker = spawn(*args)
    checkpoint = out / "models" / "example" / "run_config_0" / "last.ckpt"
    kill_when(worker, checkpoint.exists)
    result = CliRunner().invoke(cli, args)
    rows = read_csv(out / "search" / STUDY / "trials.csv")
    assert [(row["trial"], row["state"], row["retry_of"]) for row in rows] == [("0", "failed", ""),
                                                                               ("1", "complete", "0")]
    assert f"its worker {os.uname().nodename}:{worker.pid} stopped" in rows[0]["error"]
    assert "trial 1: resuming configuration 0 from its last epoch checkpoint" in result.output
    assert rows[1]["model"] == str(checkpoint.parent / "model.h5") and not checkpoint.exists()
    latency, size = float(rows[1]["latency_ms"]), float(rows[1]["size_kb"])
    one_error_line(result, f"study '{STUDY}': no trial met the budget (<= 1 kB); the fastest, trial 1, takes "
                           f"{latency:.3g} ms per chunk and {size:.0f} kB (fp32); see "
                           f"{out.resolve() / 'search' / STUDY / 'trials.csv'}")


# --- bad input: one line each, nothing of an earlier study lost ---------------------------------------------------

def test_bad_spaces_and_options_are_one_line_each(example_dir, tmp_path):
    space = write_space(tmp_path, example_dir)
    out = tmp_path / "out"
    empty = tmp_path / "empty.json"
    empty.write_text("{}", encoding="utf-8")
    inverted = write_space(tmp_path / "inverted", example_dir, dropout={"low": 0.5, "high": 0.1})
    cases = [
        (arguments(example_dir, out, empty), f"{empty}: expected a JSON object of lists and ranges "
                                             "({\"low\": a, \"high\": b}), got an empty object"),
        (arguments(example_dir, out, inverted), f"{inverted}: key 'dropout': range low 0.5 is above high 0.1"),
        (arguments(example_dir, out, space, "--trials", "0"), "--trials: value 0: expected a number from 1 to 10000"),
        (arguments(example_dir, out, space, "--trials", "99999999999999999999"),
         "--trials: value 99999999999999999999: expected a number from 1 to 10000"),
        (arguments(example_dir, out, space, "--max-size-kb", "inf"),
         "--max-size-kb: value inf: expected a finite number > 0 (leave the flag out for no budget)"),
        (arguments(example_dir, out, space, "--study", "x:devel"),
         "study 'x:devel': a name ending in ':devel' names the pruning twin of study 'x': pass another --study"),
        (arguments(example_dir, out, space, "--storage", "sqlite://"),
         "--storage sqlite://: an in-memory SQLite database lives and dies with one process: give a file "
         "(sqlite:///search.db) or a server"),
        (arguments(example_dir, out, space, "--storage", f"sqlite:///{tmp_path}/missing/s.db"),
         f"--storage sqlite:///{tmp_path}/missing/s.db: cannot open it as an Optuna storage: unable to open "
         "database file"),
    ]
    for args, message in cases:
        one_error_line(CliRunner().invoke(cli, args), message)


@pytest.mark.parametrize("stored, message", [
    ({"space_changes": {"dropout": [0.1, 0.3]}},
     "it searches another space (key 'dropout': choice [0.1, 0.3] there, range {\"low\": 0.0, \"high\": 0.5, "
     "\"log\": false, \"step\": null, \"integer\": false} here)"),
    ({"max_latency_ms": 5.0}, "--max-latency-ms is 5.0 there, 10.0 here"),
])
def test_a_study_of_another_command_is_refused_and_kept(example_dir, tmp_path, stored, message):
    import optuna

    from dspl.workflows.search_study import SearchCommand, open_storage, open_study

    space = write_space(tmp_path, example_dir)
    other = write_space(tmp_path / "other", example_dir, **stored.get("space_changes", {}))
    out = tmp_path / "out"
    journal = out / "search" / "journal.log"
    journal.parent.mkdir(parents=True)
    classes = load_class_config(example_dir / "class_config.json")
    command = SearchCommand(load_space(other).to_json(), str((example_dir / "audio").resolve()),
                            str((example_dir / "label.csv").resolve()), classes.to_dict(), str(out.resolve()), 20,
                            stored.get("max_latency_ms", 10.0), None, "fp32")
    open_study(open_storage(str(journal)), STUDY, command, str(journal), optuna.samplers.RandomSampler(),
               optuna.pruners.NopPruner())
    before = journal.read_bytes()
    result = CliRunner().invoke(cli, arguments(example_dir, out, space, "--max-latency-ms", "10"))
    one_error_line(result, f"study '{STUDY}' in {journal.resolve()} was started by another command: {message}; use "
                           "another --study (or the command that started it)")
    assert journal.read_bytes() == before and not (out / "models").exists()


def test_a_new_study_does_not_train_into_the_folders_of_an_earlier_run(example_dir, tmp_path):
    space, out = write_space(tmp_path, example_dir), tmp_path / "out"
    earlier = out / "models" / "example" / "run_config_0"
    earlier.mkdir(parents=True)
    (earlier / "model.h5").write_bytes(b"an earlier model")
    result = CliRunner().invoke(cli, arguments(example_dir, out, space, "--study", "fresh"))
    one_error_line(result, f"{out.resolve() / 'models' / 'example' / 'run_config_0'}: holds a model of an earlier run "
                           "(train or another search), and a new study trains into run_config_<trial>; use another "
                           f"tb_run_id, or another -md than {out.resolve()}")
    assert (earlier / "model.h5").read_bytes() == b"an earlier model"


def test_search_is_listed_after_train_in_the_help():
    from dspl.cli.main import COMMANDS

    assert COMMANDS[COMMANDS.index("train") + 1] == "search"
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0 and " search " in result.output


def test_a_trial_whose_event_files_are_damaged_names_them(trained_model: Path, tmp_path: Path):
    """A finished trial's devel figure is read back from its TensorBoard logs; where TensorBoard's reader stopped at
    damage, the error says which file and record instead of guessing at an empty devel partition."""
    for events in run_log_dir(trained_model).glob("events.out.tfevents.*"):
        data = events.read_bytes()
        (tmp_path / events.name).write_bytes(data[:second_record_data(data)])
    damaged = sorted(tmp_path.glob("events.out.tfevents.*"))
    with pytest.raises(DsplError) as error:
        search_trial.logged_metric(tmp_path, "uar")
    assert str(error.value) == f"{tmp_path}: no devel UAR in the run's TensorBoard logs; " + "; ".join(
        f"{path}: record 2 is damaged (has truncated record in data); the curves lack it and what follows"
        for path in damaged)


def test_a_trials_metrics_are_the_devel_and_test_figures_logged_last(trained_model: Path, tmp_path: Path):
    for events in run_log_dir(trained_model).glob("events.out.tfevents.*"):
        shutil.copy(events, tmp_path)
    scalars = read_scalars(tmp_path)
    assert search_trial.logged_metric(tmp_path, "uar") == (scalars["val/uar"][-1][1], scalars["test/uar"][-1][1])
