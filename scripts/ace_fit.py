"""Linear ACE fit to rMD17 ethanol (split 01): learning curve over training sizes and body orders.

Writes ``artifacts/phase01/ace_fit.json`` (read by ``03_linear_ace_fit.ipynb``).  The notebook
runs the same function, :func:`acecourse.ace.fit.learning_curve`, on a smaller problem.

Usage::

    python scripts/ace_fit.py                 # full run: 950 train / 50 valid / 1000 test frames
                                              # (last run: 41 min, niced, on 2 shared cores)
    python scripts/ace_fit.py --n-test 200 --sizes 50 100 --output /tmp/small.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from acecourse.ace.fit import learning_curve
from acecourse.ace.model import ACEDescriptor
from acecourse.data import load_rmd17_ethanol
from acecourse.data.rmd17 import train_valid_split

REPO = Path(__file__).resolve().parents[1]

#: The basis of the full run: {nu: (n_max, l_max)}, cutoff 5 Å, elements H, C, O.
FULL_ORDERS = {1: (8, 0), 2: (6, 3), 3: (3, 2)}


#: The files this result depends on (for the ``-dirty`` mark of the recorded commit).
_SOURCES = ("acecourse/ace", "acecourse/maths", "acecourse/data", "scripts/ace_fit.py")


def _git_commit() -> str | None:
    """The repository's commit, with ``-dirty`` when the fit's sources differ from it (None
    outside git)."""
    try:
        run = lambda *cmd: subprocess.run(
            ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        dirty = run("status", "--porcelain", "--", *_SOURCES)
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 250, 500, 950])
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--r-cut", type=float, default=5.0)
    parser.add_argument(
        "--ridges",
        type=float,
        nargs="+",
        default=[1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3],
        help="ridge grid (relative to the standardised Gram diagonal), chosen on validation",
    )
    parser.add_argument("--force-weights", type=float, nargs="+", default=[0.3, 1.0])
    parser.add_argument(
        "--rank-frames",
        type=int,
        default=300,
        help="training frames on which the numerical rank of each design is computed (0: none)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="order of the training frames")
    parser.add_argument(
        "--output", type=Path, default=REPO / "artifacts" / "phase01" / "ace_fit.json"
    )
    args = parser.parse_args()
    if not all(1 <= n <= 950 for n in args.sizes):
        parser.error("--sizes: every training size must lie in 1..950 (the 950 training frames)")
    if not 1 <= args.n_test <= 1000:
        parser.error("--n-test: give 1..1000 test frames")
    if not all(r > 0 for r in args.ridges):
        parser.error("--ridges: every ridge must be positive")
    if not all(w >= 0 for w in args.force_weights):
        parser.error("--force-weights: every force weight must be >= 0")
    if not 0 <= args.rank_frames <= max(args.sizes):
        parser.error("--rank-frames: give 0..max(--sizes) frames")
    if args.threads < 1 or args.r_cut <= 0:
        parser.error("--threads must be >= 1 and --r-cut positive")

    torch.set_num_threads(args.threads)
    train_ids, valid_ids = train_valid_split(1000, 50, seed=1)
    train_ids = np.random.default_rng(args.seed).permutation(train_ids)  # nested subsets
    train = load_rmd17_ethanol("train", indices=train_ids[: max(args.sizes)])
    valid = load_rmd17_ethanol("train", indices=valid_ids)
    test = load_rmd17_ethanol("test", indices=np.arange(args.n_test))

    descriptor = ACEDescriptor((1, 6, 8), args.r_cut, FULL_ORDERS)
    commit = _git_commit()  # at the start: the code that runs, not what HEAD is at the end
    start = time.perf_counter()
    result = learning_curve(
        descriptor,
        train,
        valid,
        test,
        args.sizes,
        args.ridges,
        args.force_weights,
        progress=True,
        rank_frames=args.rank_frames,
    )
    result["timing"]["total_seconds"] = time.perf_counter() - start
    result["command"] = "python scripts/ace_fit.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k != "output"
    )
    result["machine"] = {"platform": platform.platform(), "torch_threads": args.threads}
    result["commit"] = commit
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    best = max(result["results"], key=lambda r: (r["n_train"], r["nu"]))
    print(
        f"{best['n_features']} features, n_train={best['n_train']}: test energy MAE "
        f"{best['test']['energy_mae_meV']:.2f} meV, force MAE {best['test']['force_mae_meV_per_A']:.2f} meV/Å"
    )


if __name__ == "__main__":
    main()
