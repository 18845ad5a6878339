"""Train the L = 0, 1, 2 potentials of chapter 02/04 at a larger size and save their curves.

Usage (from the repository root)::

    python scripts/phase02_train.py --n-train 1000 --n-test 500 --epochs 50 --batch-size 5 \
        --learning-rate 0.01 --eval-every 2 --seeds 0 1 2 --jobs 2

writes ``artifacts/phase02/lmax_comparison.json`` (``--out`` to write elsewhere): the three models
``L = 0, 1, 2`` trained once per seed (the seed sets the initial weights and the order of the
batches; the data are the same).  ``L`` is the degree of the hidden features and, tied to it, of
the edge spherical harmonics (``EquivariantPotential``'s default ``edge_l_max = l_max``), so the
comparison raises both together.  That command took 32 minutes on 2 CPU cores; the record
stores the wall time of the whole and of each run.  The notebook
``02_equivariant_neural_networks/04_training_on_ethanol.ipynb`` reads it next to its own short
run.  The code is the notebook's: :func:`acecourse.nn.trainer.compare_l_max`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import time
from dataclasses import fields
from pathlib import Path

import torch

from acecourse.nn.trainer import MATCHED_MULTIPLICITIES, TrainingSettings, compare_l_max

ROOT = Path(__file__).resolve().parents[1]


def train_one(settings: TrainingSettings, l_max: int, threads: int) -> dict:
    """Train the model of one ``L`` (in a worker process) and return its JSON-able result."""
    torch.set_num_threads(threads)
    (result,) = compare_l_max(settings, {l_max: MATCHED_MULTIPLICITIES[l_max]}, progress=False)
    result.pop("model")
    print(f"{result['label']} seed {settings.seed} done in {result['seconds']:.0f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainingSettings()
    for field in fields(TrainingSettings):
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(getattr(defaults, field.name)),
            default=getattr(defaults, field.name),
        )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument("--jobs", type=int, default=1, help="models trained in parallel processes")
    parser.add_argument("--l-max", type=int, nargs="+", default=sorted(MATCHED_MULTIPLICITIES))
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="train every L once per seed (overrides --seed)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts/phase02/lmax_comparison.json")
    args = parser.parse_args()
    unknown = sorted(set(args.l_max) - set(MATCHED_MULTIPLICITIES))
    if unknown:
        parser.error(f"--l-max {unknown}: choose from {sorted(MATCHED_MULTIPLICITIES)}")
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    seeds = args.seeds if args.seeds is not None else [args.seed]
    base = {f.name: getattr(args, f.name) for f in fields(TrainingSettings)}
    # longest jobs first (the cost grows with L), so that parallel workers finish together
    tasks = [
        (TrainingSettings(**{**base, "seed": seed}), l_max)
        for l_max in sorted(args.l_max, reverse=True)
        for seed in seeds
    ]
    start = time.time()
    if args.jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(train_one, s, l, args.threads) for s, l in tasks]
            results = [future.result() for future in futures]
    else:
        results = [train_one(s, l, args.threads) for s, l in tasks]
    results.sort(key=lambda r: (r["settings"]["seed"], r["model_kwargs"]["l_max"]))
    options = [f for f in fields(TrainingSettings) if args.seeds is None or f.name != "seed"]
    record = {
        "command": "python scripts/phase02_train.py "
        + " ".join(f"--{f.name.replace('_', '-')} {getattr(args, f.name)}" for f in options)
        + ("" if args.seeds is None else " --seeds " + " ".join(map(str, args.seeds)))
        + f" --threads {args.threads} --jobs {args.jobs}",
        "seeds": seeds,
        "torch": torch.__version__,
        "threads": args.threads,
        "jobs": args.jobs,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "total_seconds": time.time() - start,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    for result in results:
        print(
            f"{result['label']} seed {result['settings']['seed']}: "
            f"{result['n_parameters']} parameters, test force MAE "
            f"{result['final']['forces_mae_meV_per_A']:.1f} meV/Å, {result['seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
