"""A one-at-a-time sweep of MACE's design space on rMD17 ethanol (chapter 04/03).

Every point is the course's training command, ``acecourse.training.train(make_config("ci", ...))``,
with a few settings changed around a base point (correlation order nu=2, two interaction layers,
hidden features up to L=1).  The axes are the three of the design-space paper
(Batatia et al., arXiv:2205.06643): correlation order ``correlation`` (nu), number of layers
``num_interactions`` (T) and the largest feature degree L of ``hidden_irreps``.

Usage::

    python scripts/design_space_sweep.py --out artifacts/phase04/sweep.json
    python scripts/design_space_sweep.py --seeds 123 124 --max-epochs 30 --out /tmp/sweep.json

(7 points x 5 seeds took 6.4 min on a shared 2-core CPU, one torch thread per run) writes one JSON file with one record per point and seed (``SEEDS``: model initialisation and
batch order; the frames are the same for every run): its settings, parameter count, the validation
errors and the time of every epoch, and the test errors read twice:

- ``test_stage_one``: the best validation weights of stage one (the lowest validation loss with
  stage one's loss weights), tested when stage one ends, before stage two changes the loss;
- ``test``: what the training command tests, the best validation weights of the last stage
  (:class:`acecourse.training.trainer.BestWeights`).

Stage two weights energies 1,000 times more than stage one does and moves the force errors of
different points by different amounts, so a comparison of force errors is only trusted when both
readings agree (chapter 04/03).  The runs' own folders (metrics.csv, run.json, test_metrics.json,
model.pt.gz) go to ``--runs`` (default: a temporary folder; not committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from acecourse.training import error_metrics, make_config, train
from acecourse.training.data import make_batches
from acecourse.training.trainer import predict

#: Hidden irreps for each largest feature degree L (16 channels per degree).
HIDDEN_IRREPS = {0: "16x0e", 1: "16x0e+16x1o", 2: "16x0e+16x1o+16x2e"}

#: The base point and the training budget shared by every point of the sweep.
BASE = {"correlation": 2, "num_interactions": 2, "L": 1}
BUDGET = {
    "n_train": 50,
    "n_valid": 10,
    "n_test": 100,
    "max_epochs": 15,
    "stage_two_start": 12,
    "max_ell": 2,
    "dtype": "float32",
    "seed": 123,  # replaced by each of SEEDS
    "max_wall_s": 400.0,  # per point, a safety net only: a point that hits it is evaluated
    "at_wall": "finish",  # and recorded with its (smaller) epoch count
    "progress": False,
}

#: Seeds of model initialisation and batch order; every point is trained once with each.
SEEDS = (123, 124, 125, 126, 127)


def design_points() -> list[dict[str, int]]:
    """The base point and its one-at-a-time neighbours: nu in {1,2,3}, T in {1,2}, L in {0,1,2}."""
    points = [dict(BASE)]
    for key, values in (("correlation", (1, 3)), ("num_interactions", (1,)), ("L", (0, 2))):
        for value in values:
            points.append({**BASE, key: value})
    points.append({"correlation": 3, "num_interactions": 1, "L": 1})  # the ACE-like point
    return points


def point_name(point: dict[str, int]) -> str:
    return f"nu{point['correlation']}_T{point['num_interactions']}_L{point['L']}"


def overrides_for(point: dict[str, int], budget: dict[str, Any]) -> dict[str, Any]:
    """The ``make_config("ci", overrides)`` settings of one design point."""
    return {
        **budget,
        "correlation": point["correlation"],
        "num_interactions": point["num_interactions"],
        "hidden_irreps": HIDDEN_IRREPS[point["L"]],
    }


class StageOneTest:
    """``plan`` hook of :func:`acecourse.training.train`: when stage one ends, test the best
    validation weights of stage one (the same evaluation as the end of the run, on the same
    frames; it uses no random numbers, so the run goes on exactly as without it)."""

    def __init__(self, stage_two_start: int) -> None:
        self.stage_two_start = stage_two_start
        self.test: dict[str, float] | None = None
        self.best_epoch: int | None = None

    def __call__(self, run) -> None:
        if run.epoch != self.stage_two_start:
            return
        batches = make_batches(run.data["test"], run.device, run.dtype)
        run.model.eval()
        with run.best.applied(run.ema):
            prediction = predict(run.model, batches, run.config.valid_batch_size)
        self.test = error_metrics(prediction, run.data["test_numbers"])
        self.best_epoch = run.best.epoch


def run_point(point: dict[str, int], budget: dict[str, Any], runs_dir: Path,
              seed: int | None = None) -> dict[str, Any]:
    """Train one design point with the course's training function; return its record."""
    overrides = overrides_for(point, budget)
    if seed is not None:
        overrides["seed"] = seed
    out = runs_dir / f"{point_name(point)}_seed{overrides['seed']}"
    stage_one = StageOneTest(budget["stage_two_start"])
    t0 = time.perf_counter()
    result = train(make_config("ci", overrides), out, resume=False,
                   command=f"design_space_sweep {point_name(point)} seed {overrides['seed']}",
                   plan=stage_one)
    wall = time.perf_counter() - t0
    if result["status"] == "paused":  # SIGINT/SIGTERM: the training loop paused, stop the sweep
        raise KeyboardInterrupt(f"{out.name} was stopped by a signal; the sweep stops too")
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    run = json.loads((out / "run.json").read_text())
    epoch_times = [float(r["epoch_time_s"]) for r in rows]
    return {
        "name": point_name(point),
        **point,
        "seed": overrides["seed"],
        "overrides": overrides,
        "n_parameters": run["n_parameters"],
        "status": result["status"],
        "epochs": len(rows),
        "test": result["test"],
        "best_epoch": result["best_epoch"],
        "test_stage_one": stage_one.test,
        "best_epoch_stage_one": stage_one.best_epoch,
        "valid_forces_mae_meV_per_A": [float(r["valid_forces_mae_meV_per_A"]) for r in rows],
        "valid_energy_mae_meV": [float(r["valid_energy_mae_meV"]) for r in rows],
        "epoch_time_s": epoch_times,
        "mean_epoch_time_s": sum(epoch_times) / len(epoch_times),
        # the median is robust to the slow first epoch and to other jobs on a shared machine
        "median_epoch_time_s": float(statistics.median(epoch_times)),
        "wall_time_s": wall,
    }


def sweep(points: list[dict[str, int]], budget: dict[str, Any], runs_dir: Path,
          seeds: tuple[int, ...] | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Run every point with every seed, one after the other (seeds outermost, so that a burst
    of load on a shared machine does not fall on all seeds of one point)."""
    from tqdm.auto import tqdm

    # one thread: the models are tiny (9 atoms, batches of 5 frames), and on a shared 2-core
    # machine two threads per process wait on each other and run several times slower
    torch.set_num_threads(1)
    runs = [(p, s) for s in (seeds or (budget["seed"],)) for p in points]
    return [run_point(p, budget, runs_dir, s)
            for p, s in tqdm(runs, desc="design points", disable=not progress)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="artifacts/phase04/sweep.json")
    parser.add_argument("--runs", default=None, help="folder for the runs (default: temporary)")
    parser.add_argument("--max-epochs", type=int, default=BUDGET["max_epochs"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    if args.max_epochs < 5:
        parser.error("--max-epochs must be at least 5 (three of them are stage two)")
    budget = {**BUDGET, "max_epochs": args.max_epochs,
              "stage_two_start": max(1, args.max_epochs - 3)}
    runs_dir = Path(args.runs or tempfile.mkdtemp(prefix="design_space_"))
    t0 = time.perf_counter()
    records = sweep(design_points(), budget, runs_dir, tuple(args.seeds), progress=True)
    result = {
        "description": "one-at-a-time sweep of (correlation, num_interactions, L) around "
                       "nu=2, T=2, L=1, each point trained once per seed; MACE (mace-torch "
                       "ScaleShiftMACE) on rMD17 ethanol, trained by acecourse.training.train "
                       "with the ci profile and the budget; test errors of the best validation "
                       "weights of stage one (test_stage_one) and of the last stage (test)",
        "command": " ".join(["python scripts/design_space_sweep.py", *(
            [f"--max-epochs {args.max_epochs}"] if args.max_epochs != BUDGET["max_epochs"] else []
        ), *([f"--seeds {' '.join(map(str, args.seeds))}"] if tuple(args.seeds) != SEEDS else [])]),
        "seeds": list(args.seeds),
        "base": BASE,
        "budget": budget,
        "hidden_irreps": {str(k): v for k, v in HIDDEN_IRREPS.items()},
        "device": f"CPU ({platform.machine()}), torch threads {torch.get_num_threads()}",
        "software": {"torch": torch.__version__},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "total_wall_time_s": time.perf_counter() - t0,
        "points": records,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps([{k: r[k] for k in ("name", "seed", "n_parameters", "wall_time_s")}
                      | {"F_MAE_stage_one": r["test_stage_one"]["forces_mae_meV_per_A"],
                         "F_MAE": r["test"]["forces_mae_meV_per_A"]} for r in records], indent=1))


if __name__ == "__main__":
    main()
