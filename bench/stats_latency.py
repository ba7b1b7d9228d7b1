"""The latency `dspl stats` reports, idle and beside a process spinning on one core: timed on the CPUs free then
(dspl.threads.timing_threads, what stats, tflite-stats, benchmark, report and search do) against timed on all the
policy's threads (what they did before).

Usage: python bench/stats_latency.py [--rounds 3] [--runs 50]

The model is the example set's configuration (its tiny backbone, 64x64 plots), untrained (latency does not depend
on the weights). Each round times both ways one after the other, idle and then busy, in this process. Target: busy,
the figure stays near the idle one (the model's), not the waits of a barrier for the busy core.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from busy import busy_if  # bench/: the spinning process

from dspl import threads
from dspl.config import RunConfig
from dspl.data.example import example_hp
from dspl.latency import time_calls
from dspl.models import create_model
from dspl.models.stats import forward_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    config = RunConfig.from_dict(example_hp(), "example")
    model = create_model(config.model, 3, in_chans=config.spec.input_channels, pretrained=False).eval()
    x = torch.zeros(1, config.spec.input_channels, config.spec.image_height, config.spec.image_width)
    policy = threads.applied_policy().threads
    figures: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for busy in (False, True):
            with busy_if(busy):
                free = forward_latency(model, x, runs=args.runs)
                with torch.no_grad(), threads.torch_threads(policy):
                    every = time_calls({"model": lambda: model(x)}, args.runs)["model"]
            load = "busy" if busy else "idle"
            figures.setdefault(f"{load}, free CPUs ({free['threads']} thread(s))", []).append(free["median_ms"])
            figures.setdefault(f"{load}, all {policy} policy threads", []).append(every["median_ms"])
    print(f"{config.model.basemodel_name} at {x.shape[-1]}x{x.shape[-2]}, median ms per forward pass, "
          f"{args.rounds} rounds of {args.runs} runs")
    for name, values in figures.items():
        print(f"  {name:40s} {statistics.median(values):8.2f}  ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
