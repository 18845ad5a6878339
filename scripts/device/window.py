"""The course's GPU windows: a chain of warm-restart cycles whose state is one committed file.

``gpu.sh window`` runs ``window`` on the device; ``land`` adds what came back to the chain
(``artifacts/mace_ethanol/chain/``), ``compare`` reads two runs at equal wall time
(README.md).  Each window is one cycle of the ``cycle`` schedule from the chain's newest
``model.pt.gz``, fitted to the time left (``time_plan``); its start weights compete for "best",
so a window that cannot improve exports them again (``improved=0``).  It tests its best weights
in float64 and writes ``OUT/windowNN/`` and the grown ``OUT/chain.csv`` (a device call returns
files at most two folders down; ``gpu.sh check`` lists them).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from acecourse.data.rmd17 import RMD17DataError
from acecourse.training.config import TrainConfig, make_config, parse_settings
from acecourse.training.evaluate import evaluate_float64
from acecourse.training.report import CHAIN, read_chain
from acecourse.training.schedules import time_plan
from acecourse.training.trainer import ARCHITECTURE, TrainingError, read_metrics, train

CHAIN_FIELDS = [
    "window", "start_weights", "epochs", "cumulative_epochs", "batch_size", "schedule",
    "evaluated_epoch", "improved", "valid_forces_mae_meV_per_A", "valid_energy_mae_meV",
    "test_forces_mae_meV_per_A", "test_energy_mae_meV", "test_frames", "train_wall_s",
    "window_wall_s", "cumulative_gpu_min", "device", "git_commit", "model",
]  # fmt: skip
"""Columns of ``chain.csv``.  ``valid_*``: validation errors of the weights that became the
chain's state (the window's best on the validation loss of its last stage, epoch
``evaluated_epoch``; 0 and ``improved=0``: its start weights again); ``test_*``: their test
errors in float64; ``window_wall_s``: the whole window (install included), which
``cumulative_gpu_min`` adds up."""

WINDOW_FILES = ("config.json", "metrics.csv", "run.json", "test_metrics.json",
                "test_metrics_float64.json", "model.pt.gz")  # fmt: skip
"""The files a window returns (plus ``window.log``, written by ``gpu.sh``)."""

LANDED_SETTINGS = (*ARCHITECTURE, "dtype", "n_train", "n_valid", "split_seed", "n_test")
"""Settings a landed window must share with its chain's profile: the model, and the frames it
trained, validated and was tested on (else its errors cannot be compared with the others')."""

UNPLANNED = 1_000_000  # a window's epoch count until its plan fixes it after the warm-up
_STOPPED = {"finished_at_wall_time": "the time limit", "finished_at_signal": "a signal",
            "stopped_at_non_finite_loss": "a non-finite training loss"}  # fmt: skip


def write_chain(rows: list[dict[str, Any]], chain_dir: str | os.PathLike) -> Path:
    path = Path(chain_dir) / "chain.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CHAIN_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run_row(run_dir: Path, model: str) -> dict[str, Any]:
    """The columns of a chain row that a finished window's own files give (``model``: where its
    ``model.pt.gz`` will lie in the repository); a cycle cut short says so in ``schedule``."""
    config = json.loads((run_dir / "config.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    test = json.loads((run_dir / "test_metrics_float64.json").read_text())["metrics"]
    evaluated = run["evaluated_weights"]["epoch"]
    if evaluated == 0:  # the start weights won: their errors were taken before the first step
        valid = run["init_valid"]
        valid_f, valid_e = valid["forces_mae_meV_per_A"], valid["energy_mae_meV"]
    else:
        metrics = read_metrics(run_dir)
        row = metrics[metrics["epoch"] == evaluated][0]
        valid_f, valid_e = row["valid_forces_mae_meV_per_A"], row["valid_energy_mae_meV"]
    schedule = run["schedule"]
    if run["status"] in _STOPPED:
        schedule += f"; ended after epoch {run['epochs_completed']} by {_STOPPED[run['status']]}"
    return {
        "epochs": run["epochs_completed"],
        "batch_size": config["batch_size"],
        "schedule": schedule,
        "evaluated_epoch": evaluated,
        "improved": 0 if evaluated == 0 else 1,
        "valid_forces_mae_meV_per_A": float(valid_f),
        "valid_energy_mae_meV": float(valid_e),
        "test_forces_mae_meV_per_A": test["forces_mae_meV_per_A"],
        "test_energy_mae_meV": test["energy_mae_meV"],
        "test_frames": test["n_frames"],
        "train_wall_s": round(run["wall_time_s"], 1),
        "device": run["device"],
        "git_commit": run["git_commit"],
        "model": model,
    }


def _log_epochs(plan):
    """``plan`` (if any), then one line per epoch on stdout: the window's log, which the device
    returns even when the call is cut off, shows how far it got."""

    def after_epoch(run) -> None:
        if plan is not None:
            plan(run)
        r = run.history[-1]
        total = "?" if run.total_epochs >= UNPLANNED else run.total_epochs  # before the plan
        print(
            f"epoch {r['epoch']}/{total} stage {r['stage']} lr {r['lr']:.3g} "
            f"valid F {r['valid_forces_mae_meV_per_A']:.3f} meV/A E {r['valid_energy_mae_meV']:.3f}"
            f" meV ({r['epoch_time_s']:.2f} s, {r['wall_time_s']:.0f} s)",
            flush=True,
        )

    return after_epoch


@contextlib.contextmanager
def _signals_noted():
    """SIGTERM outside the epochs (loading, the test evaluations, writing the files) is noted
    and ignored, so that a window which has trained is never lost to it; during the epochs the
    trainer ends the window after the current epoch.  gpu.sh's SIGKILL 35 s later remains."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum, frame):
        print(f"warning: {signal.Signals(signum).name} outside the epochs: ignored, the window "
              "finishes its evaluation and files", file=sys.stderr, flush=True)  # fmt: skip

    old = signal.signal(signal.SIGTERM, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_window(
    out_root: str | os.PathLike,
    until: float | None = None,
    profile: str = "full",
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    reserve_s: float = 45.0,
    repo_root: str | os.PathLike = ".",
    started: float | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the chain's next window; write ``out_root/windowNN/`` and ``out_root/chain.csv``.

    ``until``: the window's end (``time.time()``), training stops ``reserve_s`` before it for
    the evaluation; or ``epochs``: a fixed cycle length (tests).  ``profile``, ``overrides``:
    the settings; the window sets ``schedule="cycle"``, ``init_weights`` (the chain's newest
    model; none on an empty chain) and ``seed`` (the profile's plus the window's number).
    ``started``: when the window's command began, for ``window_wall_s``.  The window writes no
    checkpoint; it ends evaluated at its time limit, at a signal and at a non-finite loss.
    Returns the new chain row with ``window_dir`` and ``status``.
    """
    started = time.time() if started is None else started
    if until is None and epochs is None:
        raise ValueError("give the window's end (--until) or its epochs")
    repo_root, out_root = Path(repo_root), Path(out_root)
    rows = read_chain(repo_root / CHAIN)
    parent = rows[-1] if rows else None
    index = parent["window"] + 1 if parent else 1
    settings: dict[str, Any] = {"schedule": "cycle", "at_wall": "finish", "progress": False,
                                "init_weights": None, "max_epochs": epochs or UNPLANNED,
                                "seed": make_config(profile).seed + index}  # fmt: skip
    if parent is not None:
        model = repo_root / parent["model"]
        if not model.is_file():
            raise TrainingError(f"{model}: the chain's newest weights are missing (window "
                                f"{parent['window']}); land that window's files first")  # fmt: skip
        settings["init_weights"] = str(model)
    settings.update(overrides or {})
    if until is not None:
        settings["max_wall_s"] = until - reserve_s - time.time()
        if settings["max_wall_s"] <= 0:
            raise ValueError(f"no time left for training (reserve {reserve_s:g} s)")
    config = make_config(profile, settings)
    if config.schedule != "cycle":
        raise ValueError("a window is one warm-restart cycle: leave schedule=cycle")
    plan = _log_epochs(time_plan(until - reserve_s) if epochs is None else None)
    name = f"window{index:02d}"
    window_dir = out_root / name
    with _signals_noted(), tempfile.TemporaryDirectory(prefix="window_") as scratch:
        result = train(config, scratch, resume=False, command=command, plan=plan, checkpoints=False)
        if result["status"] == "paused":  # only a second signal, mid-epoch, gets here
            raise TrainingError("the window was stopped by a signal; its files were not written")
        if "test_float64" not in result:  # a float64 run: its test metrics are float64 already
            evaluate_float64(scratch, config.device if config.device != "auto" else "cpu")
        window_dir.mkdir(parents=True, exist_ok=True)
        for file in WINDOW_FILES:
            shutil.copyfile(Path(scratch) / file, window_dir / file)
    row = _run_row(window_dir, (CHAIN / name / "model.pt.gz").as_posix())
    row.update(
        window=index,
        start_weights=parent["model"] if parent else "random initialisation",
        cumulative_epochs=(parent["cumulative_epochs"] if parent else 0) + row["epochs"],
        window_wall_s=round(time.time() - started, 1),
    )
    before = parent["cumulative_gpu_min"] if parent else 0
    row["cumulative_gpu_min"] = round(before + row["window_wall_s"] / 60, 2)
    write_chain([*rows, row], out_root)
    return {**row, "window_dir": str(window_dir), "status": result["status"]}


def land_window(
    returned: str | os.PathLike,
    repo_root: str | os.PathLike = ".",
    profile: str | TrainConfig | None = "full",
) -> dict[str, Any]:
    """Copy a window's returned files into the repository and drop the superseded model.

    ``returned`` holds them flat (``chain.csv``, ``windowNN/``) or in the repository's layout.
    Checks that its ``chain.csv`` is the repository's plus one row that starts from the newest
    model, that every file is there, and that the window shares :data:`LANDED_SETTINGS` and the
    test frames with ``profile`` (``None``: no such check).  Copies them as plain files (a
    fetched file may be read-only) and deletes the previous window's ``model.pt.gz``.
    """
    returned, repo_root = Path(returned), Path(repo_root)
    flat = (returned / "chain.csv").is_file()
    returned_chain = returned if flat else returned / CHAIN
    new_rows, old_rows = read_chain(returned_chain), read_chain(repo_root / CHAIN)
    if len(new_rows) != len(old_rows) + 1 or new_rows[:-1] != old_rows:
        raise TrainingError(f"{returned_chain / 'chain.csv'} does not extend the repository's "
                            "chain by one row (was another window landed meanwhile?)")  # fmt: skip
    row = new_rows[-1]
    expected = old_rows[-1]["model"] if old_rows else "random initialisation"
    if row["start_weights"] != expected:
        raise TrainingError(f"window {row['window']} started from {row['start_weights']}, "
                            f"not {expected}")  # fmt: skip
    window_dir = Path(row["model"]).parent
    source = returned / window_dir.name if flat else returned / window_dir
    names = (*WINDOW_FILES, "window.log")
    missing = [n for n in names if not (source / n).is_file()]
    if missing:
        raise TrainingError(f"{source}: missing {', '.join(missing)}")
    if profile is not None:
        wanted = make_config(profile) if isinstance(profile, str) else profile
        config = json.loads((source / "config.json").read_text())
        differ = [f"{k}={config.get(k)!r}" for k in LANDED_SETTINGS
                  if config.get(k) != getattr(wanted, k)]  # fmt: skip
        frames = wanted.n_test or 1000
        if row["test_frames"] != frames:
            differ.append(f"test_frames={row['test_frames']} (not {frames})")
        if differ:
            label = profile if isinstance(profile, str) else "given"
            raise TrainingError(f"window {row['window']} does not belong in a chain of the {label}"
                                f" profile ({', '.join(differ)}): not landed")  # fmt: skip
    (repo_root / window_dir).mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, repo_root / window_dir / name)
    shutil.copyfile(returned_chain / "chain.csv", repo_root / CHAIN / "chain.csv")
    written = [(window_dir / n).as_posix() for n in names] + [(CHAIN / "chain.csv").as_posix()]
    removed = []
    if old_rows and (repo_root / old_rows[-1]["model"]).is_file():
        (repo_root / old_rows[-1]["model"]).unlink()
        removed.append(old_rows[-1]["model"])
    return {"window": row["window"], "written": written, "removed": removed}


def compare_at_equal_time(run_dirs: list[str | os.PathLike]) -> dict[str, Any]:
    """Which run reached the lower best validation force error by the shortest of the runs'
    wall times (the common budget); each run's value there, its epochs and batch size."""
    curves = {}
    for run_dir in map(Path, run_dirs):
        m = read_metrics(run_dir)
        batch = json.loads((run_dir / "config.json").read_text())["batch_size"]
        best = np.minimum.accumulate(m["valid_forces_mae_meV_per_A"])
        curves[run_dir.name] = (batch, m["wall_time_s"], best)
    budget = min(float(wall[-1]) for _, wall, _ in curves.values())
    runs = {}
    for name, (batch, wall, best) in curves.items():
        reached = best[wall <= budget]
        at_budget = float(reached[-1]) if reached.size else None
        runs[name] = {"batch_size": batch, "epochs_in_budget": int(reached.size),
                      "valid_forces_mae_meV_per_A_at_budget": at_budget}  # fmt: skip
    ranked = {n: r["valid_forces_mae_meV_per_A_at_budget"] for n, r in runs.items()}
    winner = min((n for n in ranked if ranked[n] is not None), key=ranked.get)
    return {"budget_s": budget, "runs": runs, "winner": winner}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/device/window.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("window", help="train the chain's next window (one device call)")
    p.add_argument("--out", required=True, help="folder for the window's files")
    p.add_argument("--profile", default="full")
    p.add_argument("--until", type=float, default=None, help="the window's end (Unix time)")
    p.add_argument("--started", type=float, default=None, help="its start (Unix time)")
    p.add_argument("--epochs", type=int, default=None, help="fixed cycle length instead")
    p.add_argument("--reserve", type=float, default=45.0, help="seconds kept for the test")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p = sub.add_parser("land", help="add a window's returned files to the chain")
    p.add_argument("returned", help="the folder holding the window's files")
    p.add_argument("--profile", default="full", help="the chain's profile")
    p = sub.add_parser("compare", help="best validation force error at equal wall time")
    p.add_argument("run_dirs", nargs="+", help="training output folders")
    args = parser.parse_args(argv)
    try:
        if args.command == "window":
            overrides = parse_settings(args.set)
            command = " ".join(["python scripts/device/window.py", *sys.argv[1:]])
            result = run_window(args.out, until=args.until, profile=args.profile,
                                overrides=overrides, epochs=args.epochs, reserve_s=args.reserve,
                                started=args.started, command=command)  # fmt: skip
        elif args.command == "land":
            result = land_window(args.returned, profile=args.profile)
        else:
            result = compare_at_equal_time(args.run_dirs)
    except (ValueError, TrainingError, RMD17DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
