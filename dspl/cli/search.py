"""`search`: the most accurate model that fits a device budget, found by Optuna; workers share one study."""

from __future__ import annotations

from pathlib import Path

import click

from dspl.cli.options import training_options
from dspl.export.tflite_convert import QUANTIZATIONS


@click.command("search", context_settings={"help_option_names": ["-h", "--help"]})
@training_options("Output directory: models and logs as `train` writes them, search/<study>/ for the summary.",
                  'Search space: an hp config whose lists are choices and whose {"low": a, "high": b} objects '
                  '(with "log": true or "step": s) are ranges.')
@click.option("--trials", default=20, show_default=True, type=int,
              help="Trials in total (1 to 10000), over every worker that runs this command.")
@click.option("--max-latency-ms", type=float, help="Budget: median latency per chunk of the end-to-end model (ms).")
@click.option("--max-size-kb", type=float, help="Budget: size of the end-to-end .tflite model (kB).")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS), default="int8", show_default=True,
              help="Quantisation the models are exported, verified and measured in.")
@click.option("--storage", help="Optuna storage: an RDB URL (sqlite:///…, postgresql://…) or a journal file "
                                "[default: MODEL_DIR/search/journal.log].")
@click.option("--study", help="Study name [default: <tb_experiment>_<tb_run_id>].")
def command(data_dir: str, model_dir: str, hyper_config: str, class_config: str, label_file: str, trials: int,
            max_latency_ms: float | None, max_size_kb: float | None, quantize: str, storage: str | None,
            study: str | None, disable_cache: bool) -> None:
    """Search for the most accurate model within a device budget (Optuna; several workers share one study).

    Each trial trains one configuration as `train` does, exports it end-to-end with the chosen quantisation
    (verified) and measures its size and latency per chunk here. Run the same command in several processes or
    SLURM array tasks to share the work; a re-run retries the trials of workers that were killed.
    """
    from dspl.workflows.search import SearchOptions, search
    from dspl.workflows.search_summary import Budget
    from dspl.workflows.train import TrainingData, TrainOptions

    options = SearchOptions(trials=trials, budget=Budget(max_latency_ms, max_size_kb), quantize=quantize,
                            storage=storage, study=study, train=TrainOptions(cache=not disable_cache))
    search(TrainingData(Path(data_dir), Path(label_file)), model_dir, hyper_config, class_config, options)
