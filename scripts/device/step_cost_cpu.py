"""Relative cost of a training step of two hidden-irreps choices, timed on the CPU.

No GPU measurement exists for a recipe whose model changed (for example the ``full`` profile's
L = 3 model after the H200 timings of the L = 2 model): this times the full training step
(forward, forces, loss, backward, AMSGrad, EMA; batch 5, float32, one thread) of the ``full``
profile's model with each hidden irreps on the same frames, and writes the minima and their
ratio.  Chapter 03_mace_architecture/04_training_mace scales the H200's measured epoch time by
that ratio and marks the result as estimated.

    python scripts/device/step_cost_cpu.py OUT.json [--steps 3] [--warmup 2]

Each model runs ``--warmup`` untimed steps first; the minimum of the timed steps is the
estimate least raised by other load on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch

from acecourse.training import make_config
from acecourse.training.data import make_batches
from acecourse.training.model import build_model
from acecourse.training.steps import make_step_runner
from acecourse.training.trainer import prepare_data

MODELS = {"L2": "256x0e+256x1o+256x2e", "L3": "256x0e+256x1o+256x2e+256x3o"}


def time_steps(model, batches, config, steps: int, warmup: int) -> list[float]:
    """Wall times (ms) of ``steps`` full training steps after ``warmup`` untimed ones."""
    runner = make_step_runner(model, config)
    times = []
    for step in range(warmup + steps):
        start = (step * config.batch_size) % (len(batches) - config.batch_size)
        batch = batches.batch(torch.arange(start, start + config.batch_size))
        t0 = time.perf_counter()
        runner.step(batch)
        if step >= warmup:
            times.append(1e3 * (time.perf_counter() - t0))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], check=False, capture_output=True, text=True
    )
    result = {
        "command": f"python scripts/device/step_cost_cpu.py {args.out} --steps {args.steps} "
        f"--warmup {args.warmup}",
        "git_commit": commit.stdout.strip(),
        "cpu": platform.processor() or platform.machine(),
        "threads": 1,
        "batch_size": 5,
        "dtype": "float32",
        "models": {},
    }
    for name, hidden in MODELS.items():
        config = make_config(
            "full",
            {
                "device": "cpu",
                "cuda_graph": False,
                "n_train": 60,
                "n_valid": 10,
                "n_test": 10,
                "hidden_irreps": hidden,
            },
        )
        data = prepare_data(config)
        torch.manual_seed(0)
        model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
        batches = make_batches(data["train"], torch.device("cpu"), torch.float32)
        started = time.time()
        timing = time_steps(model, batches, config, args.steps, args.warmup)
        result["models"][name] = {
            "hidden_irreps": hidden,
            "parameters": sum(p.numel() for p in model.parameters()),
            "min_ms_per_step": min(timing),
            "median_ms_per_step": float(torch.tensor(timing).median()),
            "wall_s": round(time.time() - started, 1),
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(name, result["models"][name], flush=True)
    models = result["models"]
    result["ratio_L3_over_L2"] = models["L3"]["min_ms_per_step"] / models["L2"]["min_ms_per_step"]
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
