"""A one-at-a-time sweep of MACE's design space on rMD17 ethanol (chapter 04/03).

Every point is the course's training command, ``acecourse.training.train(make_config("ci", ...))``,
with a few settings changed around a base point (correlation order nu=2, two interaction layers,
hidden features up to L=1).  The axes are the three of the design-space paper
(Batatia et al., arXiv:2205.06643): correlation order ``correlation`` (nu), number of layers
``num_interactions`` (T) and the largest feature degree L of ``hidden_irreps``.

Usage::

    python -m acecourse.design_space --out artifacts/phase04/sweep.json
    python -m acecourse.design_space --seeds 123 124 --max-epochs 30 --out /tmp/sweep.json

The budget (``BUDGET``) was set by a calibration on the base point:
``artifacts/phase04/README.md`` describes it (``calibration.json``) and the committed records.

The script writes one JSON file with one record per point and seed (``SEEDS``: model
initialisation and batch order; the frames are the same for every run), rewritten after every
run (``"complete": false`` until the last one): its settings, parameter count, the validation
errors and the time of every epoch, and the test errors read twice:

- ``test_stage_one``: the best validation weights of stage one (the lowest validation loss with
  stage one's loss weights), tested when stage one ends, before stage two changes the loss;
- ``test``: what the training command tests, the best validation weights of the last stage
  (:class:`acecourse.training.trainer.BestWeights`).

Stage two weights energies 1,000 times more than stage one does and moves the force errors of
different points by different amounts, so a comparison of force errors is only trusted when both
readings agree, compared seed by seed (:func:`paired_comparison`, chapter 04/03).  The runs'
own folders (metrics.csv, run.json, test_metrics.json, model.pt.gz) go to ``--runs`` (default: a
temporary folder; not committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
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
    "n_train": 200,
    "n_valid": 10,
    "n_test": 100,
    "max_epochs": 60,
    "stage_two_start": 48,  # the last fifth of the epochs (stage_two_start_for)
    "max_ell": 2,
    "dtype": "float32",
    "seed": 123,  # replaced by each of SEEDS
    "max_wall_s": None,  # no time limit: every run does the same work, however loaded the CPU
    "progress": False,
}

#: Seeds of model initialisation and batch order; every point is trained once with each.
SEEDS = (123, 124, 125, 126, 127)

#: Two-sided level of the paired tests of :func:`paired_comparison`.
ALPHA = 0.05


def paired_comparison(better: Any, worse: Any, alpha: float = ALPHA) -> dict[str, Any]:
    """Compare two design points seed by seed: does ``better`` have the lower error?

    ``better[s]`` and ``worse[s]`` are the errors of the two points trained with the same seed
    ``s`` (the same model initialisation stream, the same frames and the same batch order), so
    the comparison works on the per-seed differences ``d_s = worse[s] - better[s]``, which
    cancel what a seed does to every point alike.  Two tests of "the mean difference is zero":

    - the paired t test, ``t = mean(d) / (std(d, ddof=1) / sqrt(n))`` with ``n - 1`` degrees
      of freedom;
    - the sign test: how many of the ``n`` seeds favour ``better``, against Binomial(n, 1/2)
      (with five seeds its smallest two-sided p is 2/32 = 0.0625, so alone it never reaches 5 %).

    The verdict is ``"yes"`` when the two-sided paired t test rejects zero at ``alpha`` with a
    positive mean difference, ``"opposite"`` when it does so with a negative one, and
    ``"no clear difference"`` otherwise.
    """
    from scipy import stats

    if len(better) != len(worse) or len(better) < 2:
        raise ValueError("paired_comparison needs the same number (>= 2) of seeds per point")
    n = len(better)
    differences = [float(w) - float(b) for b, w in zip(better, worse)]
    mean, spread = statistics.fmean(differences), statistics.stdev(differences)
    t = mean / (spread / n**0.5) if spread > 0 else (0.0 if mean == 0 else float("inf") * mean)
    p_t = float(2 * stats.t.sf(abs(t), df=n - 1))
    wins = sum(d > 0 for d in differences)
    losses = sum(d < 0 for d in differences)
    p_sign = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
    verdict = ("yes" if p_t < alpha and mean > 0 else
               "opposite" if p_t < alpha and mean < 0 else "no clear difference")
    return {"n": n, "differences": differences, "mean_difference": mean,
            "std_difference": spread, "t": t, "p_t": p_t, "wins": wins, "losses": losses,
            "p_sign": p_sign, "verdict": verdict}


def stage_two_start_for(max_epochs: int) -> int:
    """Stage two takes the last fifth of the epochs (at least three), as 800 of 1,000 in the
    ``full`` profile: 48 of 60, 12 of 15."""
    return max(1, max_epochs - max(3, max_epochs // 5))


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
              seed: int) -> dict[str, Any]:
    """Train one design point with the course's training function; return its record."""
    name = point_name(point)
    overrides = {**overrides_for(point, budget), "seed": seed}
    out = runs_dir / f"{name}_seed{seed}"
    stage_one = StageOneTest(budget["stage_two_start"])
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = train(make_config("ci", overrides), out, resume=False,
                   command=f"acecourse.design_space {name} seed {seed}", plan=stage_one)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if result["status"] == "paused":  # SIGINT/SIGTERM: the training loop paused, stop the sweep
        raise KeyboardInterrupt(f"{out.name} was stopped by a signal; the sweep stops too")
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    run = json.loads((out / "run.json").read_text())
    epoch_times = [float(r["epoch_time_s"]) for r in rows]
    return {
        "name": name,
        **point,
        "seed": seed,
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
        "cpu_time_s": cpu,  # of this process: one torch thread, so about one core's time
    }


def step_cpu_ms(points: list[dict[str, int]], budget: dict[str, Any], rounds: int = 30,
                warmup: int = 5) -> dict[str, dict[str, float]]:
    """CPU time (ms) of one full training step of each design point: forward pass, forces by
    autograd, loss, backward pass, AMSGrad and EMA updates, on batches of the sweep's size.

    Timed with ``time.thread_time``, the CPU time of the calling thread, which other programs
    on the machine inflate far less than wall-clock time (torch runs the step in this thread
    when ``torch.get_num_threads() == 1``).  The points take turns, one step each per round, so
    that a burst of load falls on every point alike rather than on all steps of one.  Returns,
    per point name, the median and the minimum over ``rounds`` rounds after ``warmup`` untimed
    ones.
    """
    from acecourse.training.model import build_model
    from acecourse.training.steps import make_step_runner
    from acecourse.training.trainer import prepare_data

    steppers = {}
    for point in points:
        config = make_config("ci", overrides_for(point, {**budget, "n_train": 20}))
        data = prepare_data(config)
        torch.manual_seed(config.seed)
        model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
        batches = make_batches(data["train"], torch.device("cpu"), getattr(torch, config.dtype))
        steppers[point_name(point)] = (make_step_runner(model, config), batches, config)
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for step in range(warmup + rounds):
        for name, (runner, batches, config) in steppers.items():
            start = step % (config.n_train // config.batch_size) * config.batch_size
            batch = batches.batch(torch.arange(start, start + config.batch_size))
            t0 = time.thread_time()
            runner.step(batch)
            if step >= warmup:
                times[name].append(1e3 * (time.thread_time() - t0))
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t)}
            for name, t in times.items()}


def sweep(points: list[dict[str, int]], budget: dict[str, Any], runs_dir: Path,
          seeds: tuple[int, ...] | None = None, progress: bool = False,
          on_record: Callable[[list[dict[str, Any]]], None] | None = None,
          ) -> list[dict[str, Any]]:
    """Run every point with every seed, one after the other (seeds outermost, so that a burst
    of load on a shared machine does not fall on all seeds of one point, and a sweep stopped
    early has every point with its first seeds).  ``on_record(records)`` is called after every
    run with the records so far."""
    from tqdm.auto import tqdm

    # one thread: the models are tiny (9 atoms, batches of 5 frames), and on a shared 2-core
    # machine two threads per process wait on each other and run several times slower
    torch.set_num_threads(1)
    runs = [(p, s) for s in (seeds or (budget["seed"],)) for p in points]
    records: list[dict[str, Any]] = []
    for p, s in tqdm(runs, desc="design points", disable=not progress):
        records.append(run_point(p, budget, runs_dir, s))
        if on_record is not None:
            on_record(records)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="artifacts/phase04/sweep.json")
    parser.add_argument("--runs", default=None, help="folder for the runs (default: temporary)")
    parser.add_argument("--max-epochs", type=int, default=BUDGET["max_epochs"])
    parser.add_argument("--n-train", type=int, default=BUDGET["n_train"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    if args.max_epochs < 5:
        parser.error("--max-epochs must be at least 5 (three of them are stage two)")
    budget = {**BUDGET, "n_train": args.n_train, "max_epochs": args.max_epochs,
              "stage_two_start": stage_two_start_for(args.max_epochs)}
    options = [f"--{name.replace('_', '-')} {budget[name]}" for name in ("n_train", "max_epochs")
               if budget[name] != BUDGET[name]]
    if tuple(args.seeds) != SEEDS:
        options.append(f"--seeds {' '.join(map(str, args.seeds))}")
    runs_dir = Path(args.runs or tempfile.mkdtemp(prefix="design_space_"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.perf_counter()
    n_runs = len(args.seeds) * len(design_points())

    def write(records: list[dict[str, Any]]) -> None:
        result = {
            "description": "one-at-a-time sweep of (correlation, num_interactions, L) around "
                           "nu=2, T=2, L=1, each point trained once per seed; MACE (mace-torch "
                           "ScaleShiftMACE) on rMD17 ethanol, trained by acecourse.training."
                           "train with the ci profile and the budget; test errors of the best "
                           "validation weights of stage one (test_stage_one) and of the last "
                           "stage (test)",
            "command": " ".join(["python -m acecourse.design_space", *options]),
            "complete": len(records) == n_runs,
            "seeds": list(args.seeds),
            "base": BASE,
            "budget": budget,
            "hidden_irreps": {str(k): v for k, v in HIDDEN_IRREPS.items()},
            "device": f"CPU ({platform.machine()}), torch threads {torch.get_num_threads()}",
            "software": {"torch": torch.__version__},
            "started": started,
            "total_wall_time_s": time.perf_counter() - t0,
            "total_cpu_time_s": sum(r["cpu_time_s"] for r in records),
            "points": records,
        }
        out.write_text(json.dumps(result, indent=2) + "\n")

    records = sweep(design_points(), budget, runs_dir, tuple(args.seeds), progress=True,
                    on_record=write)
    print(json.dumps([{k: r[k] for k in ("name", "seed", "n_parameters", "cpu_time_s")}
                      | {"F_MAE_stage_one": r["test_stage_one"]["forces_mae_meV_per_A"],
                         "F_MAE": r["test"]["forces_mae_meV_per_A"]} for r in records], indent=1))


if __name__ == "__main__":
    main()
