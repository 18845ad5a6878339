"""Training in GPU windows: a chain of warm-restart cycles whose state is one committed file.

The GPU this course is trained on comes in windows of about ten minutes, on a machine that
starts bare every time, and what travels to it (64 MiB per call, the repository included) or
comes back (8 files of at most 16 MiB) cannot hold the 63 MB checkpoint of an exact resume.  So
each window is one **warm-restart cycle** (SGDR, Loshchilov & Hutter 2017):

- it starts from the previous window's best validation EMA weights, ``model.pt.gz`` in the
  repository (12.8 MB), with a fresh AMSGrad state and a fresh EMA;
- its learning rate rises over a short warm-up, then decays along a cosine that ends with the
  window, the last fifth of the epochs in stage two (:class:`~acecourse.training.schedules.
  CycleSchedule`); the number of epochs is fixed after the warm-up from the measured epoch time
  and the time left, so a cycle always finishes;
- its start weights compete for "best" with its epochs, on the validation loss of its last stage
  (:class:`~acecourse.training.trainer.BestWeights`), so the chain never moves to weights that
  validate worse than the ones it had: a window that cannot improve records ``improved=0`` and
  exports its start weights again;
- it tests its best weights in float64 on the test frames and writes its files, with the
  chain's record ``chain.csv`` grown by one row, in the flat layout a device call can return;
  :func:`land_window` puts them where they are committed.

Only the newest ``model.pt.gz`` of the chain needs to be in the tree (older ones stay in git's
history), so what travels stays small.  What is lost against an exact resume is the optimiser's
state: Adam's moments are rebuilt during each warm-up.  A reader whose GPU runs for hours should
use the exact resume instead (``python -m acecourse.training train --profile full``).

Layout in the repository, relative to its root (``CHAIN``)::

    artifacts/mace_ethanol/chain/chain.csv          one row per window (CHAIN_FIELDS)
    artifacts/mace_ethanol/chain/windowNN/          config.json, metrics.csv, run.json,
                                                    test_metrics.json, test_metrics_float64.json,
                                                    model.pt.gz, window.log

Layout of a window's returned files (:func:`run_window`'s ``out_root``; a device call returns
files at most two folders below its output folder, so the repository's layout, four deep, would
not come back): ``out_root/chain.csv`` and ``out_root/windowNN/...``.  The rows name the files
where they will lie in the repository.

Row 0 of ``chain.csv`` is where the chain starts: the committed H100 run (:func:`start_chain`).
"""

from __future__ import annotations

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from acecourse.training.config import TrainConfig, make_config
from acecourse.training.schedules import make_schedule
from acecourse.training.trainer import ARCHITECTURE, Run, TrainingError, read_metrics, train

CHAIN = Path("artifacts/mace_ethanol/chain")
"""The chain's folder, relative to the repository root."""

CHAIN_FIELDS = [
    "window",
    "start_weights",
    "epochs",
    "cumulative_epochs",
    "batch_size",
    "schedule",
    "evaluated_epoch",
    "improved",
    "valid_forces_mae_meV_per_A",
    "valid_energy_mae_meV",
    "test_forces_mae_meV_per_A",
    "test_energy_mae_meV",
    "test_frames",
    "train_wall_s",
    "window_wall_s",
    "cumulative_gpu_min",
    "device",
    "git_commit",
    "model",
]
"""Columns of ``chain.csv``.  ``valid_*``: validation errors of the weights that were tested and
became the chain's state (the best validation EMA weights of the window's last stage, epoch
``evaluated_epoch``); ``improved``: 1 if an epoch of the window beat its start weights on the
validation loss of its last stage, 0 if none did, and then ``evaluated_epoch`` is 0, the state is
the start weights again and the ``valid_*`` and ``test_*`` errors are theirs; ``test_*``: test
errors, evaluated in float64; ``window_wall_s``: the whole window (install, loading, training,
evaluation), which ``cumulative_gpu_min`` adds up."""

WINDOW_FILES = (
    "config.json",
    "metrics.csv",
    "run.json",
    "test_metrics.json",
    "test_metrics_float64.json",
    "model.pt.gz",
)
"""The files a window returns (plus ``window.log``, written by ``scripts/device/gpu.sh``)."""


def read_chain(chain_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``chain_dir/chain.csv`` (numbers as numbers); [] when there is none."""
    path = Path(chain_dir) / "chain.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            row[key] = _number(value)
    return rows


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def write_chain(rows: list[dict[str, Any]], chain_dir: str | os.PathLike) -> Path:
    path = Path(chain_dir) / "chain.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CHAIN_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in CHAIN_FIELDS})
    return path


_STOPPED = {
    "finished_at_wall_time": "the time limit",
    "finished_at_signal": "a signal",
    "stopped_at_non_finite_loss": "a non-finite training loss",
}


def _run_row(run_dir: Path, model: str) -> dict[str, Any]:
    """The columns of a chain row that a finished run's own files give (``model``: where its
    ``model.pt.gz`` lies in the repository).  A cycle that ended before its planned last epoch
    says so in ``schedule``."""
    config = json.loads((run_dir / "config.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    test = json.loads((run_dir / "test_metrics_float64.json").read_text())["metrics"]
    metrics = read_metrics(run_dir)
    evaluated = (run.get("evaluated_weights") or {}).get("epoch")
    if evaluated is None:  # a run from before the best-weights rule: its last epoch was tested
        evaluated = int(metrics["epoch"][-1])
    if evaluated == 0:  # the start weights won: their validation errors were taken at the start
        valid = run["init_valid"]
        valid_f, valid_e = valid["forces_mae_meV_per_A"], valid["energy_mae_meV"]
    else:
        row = metrics[metrics["epoch"] == evaluated][0]
        valid_f, valid_e = row["valid_forces_mae_meV_per_A"], row["valid_energy_mae_meV"]
    schedule = run.get("schedule") or make_schedule(TrainConfig(**config)).describe()
    if config["schedule"] == "cycle" and run.get("status") in _STOPPED:
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


def start_chain(
    run_dir: str | os.PathLike, repo_root: str | os.PathLike = ".", chain_dir: Path = CHAIN
) -> dict[str, Any]:
    """Write ``chain.csv`` with row 0: a finished, committed run the first window starts from.

    That run's own files give every column; as it was not a window, its ``window_wall_s`` is
    its training wall time (no install or start-up counted).
    """
    repo_root = Path(repo_root)
    if read_chain(repo_root / chain_dir):
        raise TrainingError(f"{repo_root / chain_dir / 'chain.csv'} exists: the chain has started")
    model = (Path(run_dir) / "model.pt.gz").resolve().relative_to(repo_root.resolve())
    row = {
        "window": 0,
        "start_weights": "random initialisation",
        **_run_row(Path(run_dir), model.as_posix()),
    }
    row["cumulative_epochs"] = row["epochs"]
    row["window_wall_s"] = row["train_wall_s"]
    row["cumulative_gpu_min"] = round(row["window_wall_s"] / 60, 2)
    write_chain([row], repo_root / chain_dir)
    return row


def time_plan(deadline: float, log: Callable[[str], None] = print) -> Callable[[Run], None]:
    """A ``plan`` for :func:`~acecourse.training.trainer.train`: after the warm-up, fit the
    cycle into the time left before ``deadline`` (``time.time()`` seconds).

    The time per epoch is the wall time from the end of the first epoch (which records the CUDA
    graph) to the end of the warm-up, per epoch: the steps and the validation, and whatever
    else runs between epochs (so the cycle's end does not slip by it).  One epoch of the time
    left is kept as margin.
    """

    def plan(run: Run) -> None:
        if run.epoch != max(1, run.config.warmup_epochs) or "plan" in run.run_info:
            return
        history = run.history
        if len(history) > 1:
            epoch_s = (history[-1]["wall_time_s"] - history[0]["wall_time_s"]) / (len(history) - 1)
        else:
            epoch_s = history[0]["epoch_time_s"]
        left = deadline - time.time()
        more = max(1, int(left // epoch_s) - 1)
        total = run.epoch + more
        run.schedule.plan(total)
        run.run_info["plan"] = {"epoch_s": epoch_s, "seconds_left": left, "epochs": total}
        log(f"window plan: {epoch_s:.2f} s per epoch, {left:.0f} s left -> {total} epochs")

    return plan


UNPLANNED = 1_000_000
"""A window's epoch count until its plan fixes it after the warm-up (a bound never reached)."""


def _log_epochs(plan: Callable[[Run], None] | None) -> Callable[[Run], None]:
    """``plan`` (if any), and one line per epoch on stdout: the window's log, which the device
    returns even when the call is cut off, shows how far it got."""

    def after_epoch(run: Run) -> None:
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
    and ignored, so that a window which has trained is never lost to it; during the epochs
    :func:`~acecourse.training.trainer.train_epochs` ends the window after the current epoch.
    On the device a SIGKILL 35 s after the SIGTERM remains the hard limit
    (``scripts/device/gpu.sh``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum, frame):
        print(
            f"warning: {signal.Signals(signum).name} outside the epochs: ignored, the window "
            "finishes its evaluation and files",
            file=sys.stderr,
            flush=True,
        )

    old = signal.signal(signal.SIGTERM, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_window(
    out_root: str | os.PathLike,
    seconds: float | None = None,
    until: float | None = None,
    profile: str = "full",
    overrides: dict[str, Any] | None = None,
    epochs: int | None = None,
    reserve_s: float = 45.0,
    repo_root: str | os.PathLike = ".",
    chain_dir: Path = CHAIN,
    started: float | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the chain's next window and write its files under ``out_root`` (flat layout).

    Parameters
    ----------
    out_root
        Where the window's files go: ``out_root/windowNN/...`` and the grown
        ``out_root/chain.csv`` (at most one folder down, so that a device call returns them);
        :func:`land_window` copies them into the repository.
    seconds, until
        The window's time: ``seconds`` from now, or until the ``time.time()`` instant ``until``.
        Training stops ``reserve_s`` before it, for the evaluation.  Not needed with ``epochs``.
    profile, overrides
        The training settings (``full`` on the GPU, ``ci`` for the CPU tests); the window sets
        ``schedule="cycle"``, ``init_weights`` (the chain's newest model; none on an empty
        chain, which then starts from a random initialisation) and ``seed`` (the profile's plus
        the window's number, so that windows see their batches in different orders).
    epochs
        Fix the cycle's length instead of fitting it to the time (reproducible; tests).
    started
        ``time.time()`` when the window's command began (install included), for
        ``window_wall_s``; default: now.

    The window writes no checkpoint (nothing resumes it) and prints one line per epoch.  It ends
    evaluated at its time limit, at a signal (after the current epoch) and at a non-finite
    training loss (with the best weights so far); the row's ``schedule`` then says where it
    ended.

    Returns
    -------
    dict
        The new chain row (``improved`` says whether it moved the chain's state), and
        ``window_dir``.
    """
    started = time.time() if started is None else started
    if until is None and seconds is not None:
        until = time.time() + seconds
    if until is None and epochs is None:
        raise ValueError("give the window's time (seconds or until) or its epochs")
    repo_root, out_root = Path(repo_root), Path(out_root)
    rows = read_chain(repo_root / chain_dir)
    parent = rows[-1] if rows else None
    index = parent["window"] + 1 if parent else 1
    settings: dict[str, Any] = {
        "schedule": "cycle",
        "at_wall": "finish",
        "progress": False,
        "init_weights": None,
        "max_epochs": epochs or UNPLANNED,
        "seed": make_config(profile).seed + index,
    }
    if parent is not None:
        model = repo_root / parent["model"]
        if not model.is_file():
            raise TrainingError(
                f"{model}: the chain's newest weights are missing (window {parent['window']}); "
                "land that window's files first"
            )
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
            from acecourse.training.evaluate import evaluate_float64

            evaluate_float64(scratch, config.device if config.device != "auto" else "cpu")
        window_dir.mkdir(parents=True, exist_ok=True)
        for file in WINDOW_FILES:
            shutil.copyfile(Path(scratch) / file, window_dir / file)
    # the row names the model where it will lie in the repository
    row = _run_row(window_dir, (chain_dir / name / "model.pt.gz").as_posix())
    row.update(
        window=index,
        start_weights=parent["model"] if parent else "random initialisation",
        cumulative_epochs=(parent["cumulative_epochs"] if parent else 0) + row["epochs"],
        window_wall_s=round(time.time() - started, 1),
    )
    row["cumulative_gpu_min"] = round(
        (parent["cumulative_gpu_min"] if parent else 0) + row["window_wall_s"] / 60, 2
    )
    write_chain([*rows, row], out_root)
    return {**row, "window_dir": str(window_dir), "status": result["status"]}


LANDED_SETTINGS = (*ARCHITECTURE, "dtype", "n_train", "n_valid", "split_seed", "n_test")
"""Settings a landed window must share with its chain's profile: the model the chain's files
rebuild, and the frames it trained, validated and was tested on (else its errors cannot be
compared with the other rows')."""


def land_window(
    returned: str | os.PathLike,
    repo_root: str | os.PathLike = ".",
    chain_dir: Path = CHAIN,
    profile: str | TrainConfig | None = "full",
) -> dict[str, Any]:
    """Copy a window's returned files into the repository and drop the superseded model.

    ``returned`` holds them as :func:`run_window` writes them (``chain.csv`` and ``windowNN/``)
    or in the repository's layout (``<chain_dir>/...``).  Checks that the returned
    ``chain.csv`` is the repository's plus one row that starts from the repository's newest
    model, that every file of the window is there, and that the window belongs in a chain of
    ``profile`` (a profile's name or a :class:`TrainConfig`: the :data:`LANDED_SETTINGS` and the
    number of test frames; ``None``: no such check).  Then copies them (as plain files: a
    fetched file may be read-only), and deletes the previous window's ``model.pt.gz`` (a
    window's, never the chain's start, which other chapters load): git keeps it in the history.
    Returns what was written and removed.
    """
    returned, repo_root = Path(returned), Path(repo_root)
    flat = (returned / "chain.csv").is_file()
    returned_chain = returned if flat else returned / chain_dir
    new_rows = read_chain(returned_chain)
    old_rows = read_chain(repo_root / chain_dir)
    if len(new_rows) != len(old_rows) + 1 or new_rows[:-1] != old_rows:
        raise TrainingError(
            f"{returned_chain / 'chain.csv'} does not extend the repository's chain by one "
            "row (was another window landed meanwhile?)"
        )
    row = new_rows[-1]
    expected = old_rows[-1]["model"] if old_rows else "random initialisation"
    if row["start_weights"] != expected:
        raise TrainingError(
            f"window {row['window']} started from {row['start_weights']}, not {expected}"
        )
    window_dir = Path(row["model"]).parent
    source = returned / window_dir.name if flat else returned / window_dir
    missing = [n for n in (*WINDOW_FILES, "window.log") if not (source / n).is_file()]
    if missing:
        raise TrainingError(f"{source}: missing {', '.join(missing)}")
    if profile is not None:
        wanted = make_config(profile) if isinstance(profile, str) else profile
        label = profile if isinstance(profile, str) else "given"
        config = json.loads((source / "config.json").read_text())
        differ = [
            f"{k}={config.get(k)!r}" for k in LANDED_SETTINGS if config.get(k) != getattr(wanted, k)
        ]
        frames = wanted.n_test or 1000
        if row["test_frames"] != frames:
            differ.append(f"test_frames={row['test_frames']} (not {frames})")
        if differ:
            raise TrainingError(
                f"window {row['window']} does not belong in a chain of the {label} profile "
                f"({', '.join(differ)}): not landed"
            )
    (repo_root / window_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for name in (*WINDOW_FILES, "window.log"):
        shutil.copyfile(source / name, repo_root / window_dir / name)
        written.append((window_dir / name).as_posix())
    shutil.copyfile(returned_chain / "chain.csv", repo_root / chain_dir / "chain.csv")
    written.append((chain_dir / "chain.csv").as_posix())
    removed = []
    if old_rows and old_rows[-1]["window"] > 0:
        superseded = repo_root / old_rows[-1]["model"]
        if superseded.is_file():
            superseded.unlink()
            removed.append(old_rows[-1]["model"])
    return {"window": row["window"], "written": written, "removed": removed}


def compare_at_equal_time(run_dirs: list[str | os.PathLike]) -> dict[str, Any]:
    """Which run reached the lower validation force error in the same wall time.

    Each run's best validation force MAE so far is read off its ``metrics.csv`` at the shortest
    of the runs' wall times (the common budget); the winner has the lowest.  Also gives each
    run's error after each whole minute, for a figure.
    """
    curves = {}
    for run_dir in map(Path, run_dirs):
        m = read_metrics(run_dir)
        config = json.loads((run_dir / "config.json").read_text())
        curves[run_dir.name] = (
            config,
            m["wall_time_s"],
            np.minimum.accumulate(m["valid_forces_mae_meV_per_A"]),
        )
    budget = min(float(t[-1]) for _, t, _ in curves.values())
    result = {"budget_s": budget, "runs": {}}
    for name, (config, wall, best) in curves.items():
        reached = best[wall <= budget]
        result["runs"][name] = {
            "batch_size": config["batch_size"],
            "epochs_in_budget": int(reached.size),
            "valid_forces_mae_meV_per_A_at_budget": float(reached[-1]) if reached.size else None,
        }
    ranked = [
        n
        for n, r in result["runs"].items()
        if r["valid_forces_mae_meV_per_A_at_budget"] is not None
    ]
    result["winner"] = min(
        ranked, key=lambda n: result["runs"][n]["valid_forces_mae_meV_per_A_at_budget"]
    )
    return result
