"""Train the L = 0, 1, 2 potentials of chapter 02/04 at a larger size and save their curves.

Usage (from the repository root, about 20 minutes on one CPU core)::

    python scripts/phase02_train.py --n-train 1000 --n-test 500 --epochs 40

writes ``artifacts/phase02/lmax_comparison.json``, which the notebook
``02_equivariant_neural_networks/04_training_on_ethanol.ipynb`` plots next to its own small run.
The code is the notebook's: :func:`acecourse.nn.trainer.compare_l_max`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
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
    print(f"{result['label']} done in {result['seconds']:.0f} s", flush=True)
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
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts/phase02/lmax_comparison.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = TrainingSettings(**{f.name: getattr(args, f.name) for f in fields(TrainingSettings)})
    start = time.time()
    if args.jobs > 1:
        with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(train_one, settings, l, args.threads) for l in args.l_max]
            results = [future.result() for future in futures]
    else:
        results = [train_one(settings, l, args.threads) for l in args.l_max]
    record = {
        "command": "python scripts/phase02_train.py "
        + " ".join(
            f"--{f.name.replace('_', '-')} {getattr(args, f.name)}" for f in fields(settings)
        )
        + f" --threads {args.threads} --jobs {args.jobs}",
        "torch": torch.__version__,
        "threads": args.threads,
        "jobs": args.jobs,
        "machine": platform.machine(),
        "total_seconds": time.time() - start,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    for result in results:
        print(
            f"{result['label']}: {result['n_parameters']} parameters, test force MAE "
            f"{result['final']['forces_mae_meV_per_A']:.1f} meV/Å, {result['seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
