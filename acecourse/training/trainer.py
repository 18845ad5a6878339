"""The training loop: mace-torch's model and recipe, our loop, checkpoint and resume.

Why our own loop rather than ``mace_run_train``?  The recipe is the same (Adam with AMSGrad,
per-atom energy + force MSE, EMA, reduce-on-plateau, a second stage with new loss weights, the
best validation weights tested), but a short loop is readable in the chapter, writes the
artifacts the chapter plots, and feeds the model from device-resident batches
(:mod:`acecourse.training.data`), which matters when a 9-atom molecule leaves the GPU waiting on
Python.

The loop reads in four parts, each on its own:

- setting a run up: :func:`start_run` (data, model, optimiser, schedule, EMA; resumes from a
  checkpoint with :func:`load_checkpoint`, or starts from trained weights with
  :func:`load_init_weights`), all held by one :class:`Run`;
- an epoch: :func:`train_epoch` (stage and learning rate from the :mod:`schedule
  <acecourse.training.schedules>`, one pass of optimiser steps, :func:`validate`,
  :class:`BestWeights`);
- a cycle: :func:`train_epochs`, epochs until the end of the schedule, the wall-time limit or a
  signal, with :func:`save_checkpoint` on the way (a run started with ``checkpoints=False``, a
  window of the chain, writes none);
- the end: :func:`end_run` and :func:`finalize` (test errors of the best validation weights).

A run writes into its output folder:

- ``config.json``: the :class:`TrainConfig`;
- ``metrics.csv``: one row per epoch (stage, learning rate of the epoch, train loss, validation
  MAE/RMSE, wall time);
- ``run.json``: command, git commit, device, software versions, schedule, sessions, wall time,
  parameters, which weights were tested;
- ``test_metrics.json`` and ``test_predictions.npz``: test-set errors and predictions of the
  best validation EMA weights;
- ``model.pt.gz``: those weights (state dict of the e3nn model, in the run's dtype) with what
  rebuilds the model;
- ``checkpoint.pt`` (not committed): everything needed to resume.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acecourse.data.rmd17 import load_rmd17_ethanol, train_valid_split
from acecourse.metrics import error_metrics
from acecourse.training.config import TrainConfig, config_from_dict, held_out_test_indices
from acecourse.training.data import (
    Z_TABLE,
    StaticBatches,
    atomic_reference_energies,
    energy_statistics,
    make_batches,
    to_atomic_data,
)
from acecourse.training.model import (
    build_model,
    count_parameters,
    default_dtype,
    to_cueq,
    to_e3nn,
)
from acecourse.training.schedules import Schedule, make_schedule
from acecourse.training.steps import EMA, StepRunner, make_step_runner, weights_applied

CHECKPOINT_NAME = "checkpoint.pt"
STATEFUL = ("model", "optimizer", "schedule", "ema", "best")  # Run's parts with a state_dict
VALID_METRICS = (  # error_metrics' keys that metrics.csv records as valid_<key>
    "energy_mae_meV",
    "energy_rmse_meV",
    "forces_mae_meV_per_A",
    "forces_rmse_meV_per_A",
)
METRIC_FIELDS = [
    "epoch",
    "stage",
    "lr",
    "energy_weight",
    "forces_weight",
    "train_loss",
    "valid_loss",
    *(f"valid_{name}" for name in VALID_METRICS),
    "epoch_time_s",
    "wall_time_s",
]


class TrainingError(RuntimeError):
    """A run cannot start or resume (bad settings, no GPU, incompatible checkpoint)."""


class NonFiniteLoss(TrainingError):
    """The training loss of an epoch was not finite (the weights diverged)."""


def resolve_device(config: TrainConfig) -> torch.device:
    """The torch device of a config; a clear error when CUDA is asked for and absent."""
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "this profile needs a CUDA GPU and none is available: "
            "use --profile ci, or --set device=cpu backend=e3nn for a (slow) CPU run"
        )
    if config.backend == "cueq" and config.device == "cpu":
        raise TrainingError("backend cueq needs device cuda; use --set backend=e3nn on the CPU")
    return torch.device(config.device)


def predict(model: torch.nn.Module, batches, batch_size: int) -> dict[str, np.ndarray]:
    """Energies (eV) and forces (eV/Å), reference and predicted, over a whole dataset."""
    names = ("energy_ref", "energy_pred", "forces_ref", "forces_pred")
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for batch in batches.iterate(batch_size, shuffle=False):
        out = model(batch, training=False, compute_force=True)
        n_graphs = batch["energy"].shape[0]
        for name, value in (
            ("energy_ref", batch["energy"]),
            ("energy_pred", out["energy"]),
            ("forces_ref", batch["forces"].reshape(n_graphs, -1, 3)),
            ("forces_pred", out["forces"].reshape(n_graphs, -1, 3)),
        ):
            parts[name].append(value.detach().double().cpu())
    return {name: torch.cat(values).numpy() for name, values in parts.items()}


def git_commit() -> str:
    """The commit of the code that runs: ``ACECOURSE_GIT_COMMIT`` when it is set (the device's
    copy of the tree has no ``.git``, and a ``.git`` in a folder above it must not be read), else
    ``git rev-parse HEAD`` with ``-dirty`` when tracked files differ."""
    if os.environ.get("ACECOURSE_GIT_COMMIT"):
        return os.environ["ACECOURSE_GIT_COMMIT"]
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        return run.stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return git("rev-parse", "HEAD") + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def software_versions() -> dict[str, str]:
    """Python's version, CUDA's (with a GPU), and the version of every installed distribution
    whose modules the run has imported so far (torch, mace-torch, e3nn, ...)."""
    from importlib import metadata

    imported = {name.partition(".")[0] for name in list(sys.modules)}
    names = {d for top, dists in metadata.packages_distributions().items() if top in imported
             for d in dists}  # fmt: skip
    versions = {"python": platform.python_version()}
    for name in sorted(names, key=str.lower):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    if torch.cuda.is_available():
        versions["cuda"] = str(torch.version.cuda)
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_metrics_csv(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def read_metrics(run_dir: str | os.PathLike) -> np.ndarray:
    """A run's ``metrics.csv`` as a structured array, one record per epoch (also for one epoch),
    fields :data:`METRIC_FIELDS`."""
    return np.atleast_1d(np.genfromtxt(Path(run_dir) / "metrics.csv", delimiter=",", names=True))


def split_indices(config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a config's training and validation frames (in the split's training file) and
    of its test frames (in the test file)."""
    train_idx, valid_idx = train_valid_split(1000, config.n_valid, seed=config.split_seed)
    if config.n_train > len(train_idx):
        raise TrainingError(f"n_train={config.n_train} exceeds the {len(train_idx)} frames left")
    train_idx = np.sort(
        np.random.default_rng(config.split_seed).permutation(train_idx)[: config.n_train]
    )
    return train_idx, valid_idx, held_out_test_indices(config)


def prepare_data(config: TrainConfig) -> dict[str, Any]:
    """Load the train/valid/test frames of a config and the statistics that set up the model."""
    indices = dict(zip(("train", "valid", "test"), split_indices(config)))
    frames = {  # validation frames come from the split's training file too
        name: load_rmd17_ethanol("test" if name == "test" else "train", config.data_dir, indices=i)
        for name, i in indices.items()
    }
    data = {name: to_atomic_data(f, config.r_max) for name, f in frames.items()}
    stats = energy_statistics(frames["train"])
    n_edges = sum(int(d.edge_index.shape[1]) for d in data["train"])
    n_nodes = sum(int(d.positions.shape[0]) for d in data["train"])
    return {
        **data,  # "train", "valid", "test": mace AtomicData
        "test_numbers": frames["test"][0].numbers,
        "frames": frames,
        "indices": {name: i.tolist() for name, i in indices.items()},
        "e0s": atomic_reference_energies(frames["train"], config.e0s),
        "scale": stats["rms_force"],
        "mean_energy_per_atom": stats["mean_energy_per_atom"],
        "avg_num_neighbors": n_edges / n_nodes,
    }


class _StopFlag:
    """SIGINT/SIGTERM handler.  First signal: finish the current epoch, checkpoint it, pause (a
    run with ``at_wall="finish"`` ends and is evaluated instead).  Second signal: stop at once and
    keep the last checkpoint (the steps of the unfinished epoch are dropped, so a resumed run
    stays the same run as an uninterrupted one)."""

    def __init__(self) -> None:
        self.signals = 0  # received so far

    @property
    def stop(self) -> bool:  # after this epoch
        return self.signals > 0

    @property
    def now(self) -> bool:  # at once, dropping the unfinished epoch
        return self.signals > 1

    def __call__(self, signum, frame) -> None:
        self.signals += 1
        what = "after this epoch (signal again to stop now)" if self.signals == 1 else "now"
        print(f"signal {signum}: pausing {what}", file=sys.stderr, flush=True)


class BestWeights:
    """The EMA weights of the epoch with the lowest validation loss, as mace-torch keeps them.

    mace-torch's ``run_train`` saves a checkpoint of the EMA weights whenever the validation loss
    improves, starts the count afresh when stage two changes the loss weights (losses of the two
    stages are not comparable), and tests the best checkpoint of the last stage.  This does the
    same in memory: :meth:`offer` after every validation.

    A run that starts from trained weights (a window of the chain) has one more candidate: those
    start weights, validated before the first step (:meth:`set_start`).  They enter every stage's
    count as "epoch 0", their loss formed with that stage's loss weights, so an epoch is kept only
    if it beats the start on the same footing as it must beat the other epochs.  When none does,
    the start weights are the ones tested and exported: a window cannot leave the chain worse
    than it found it (on the validation loss of its last stage).
    """

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.stage: int | None = None
        self.valid_loss = math.inf
        self.weights: list[torch.Tensor] | None = None
        self.start_weights: list[torch.Tensor] | None = None
        self.start_terms: tuple[float, float] | None = None

    def set_start(self, ema: EMA, energy_term: float, forces_term: float) -> None:
        """Make the weights ``ema`` holds now (the start) a candidate, with their validation
        energy and force terms (:func:`validation_terms`); they are the best ("epoch 0") until
        an epoch is offered."""
        self.start_weights = [s.detach().clone() for s in ema.shadow]
        self.start_terms = (float(energy_term), float(forces_term))
        self.epoch, self.weights = 0, self.start_weights

    @property
    def kept_start(self) -> bool:
        """True when the start weights won (no epoch of the last stage beat them)."""
        return self.epoch == 0

    def offer(
        self,
        epoch: int,
        stage: int,
        valid_loss: float,
        ema: EMA,
        loss_weights: tuple[float, float] | None = None,
    ) -> bool:
        """Keep ``ema``'s weights if ``valid_loss`` is the lowest of this stage so far.

        ``loss_weights`` (energy, forces) are the ones ``valid_loss`` was formed with; they price
        the start weights when a new stage begins (needed only after :meth:`set_start`).
        """
        if stage != self.stage:
            self.stage, self.valid_loss, self.epoch, self.weights = stage, math.inf, None, None
            if self.start_terms is not None:
                if loss_weights is None:
                    raise ValueError("a run with start weights must offer its loss weights")
                (w_e, w_f), (e_term, f_term) = loss_weights, self.start_terms
                self.epoch, self.weights = 0, self.start_weights
                self.valid_loss = w_e * e_term + w_f * f_term
        if not valid_loss < self.valid_loss:  # a NaN loss never becomes the best
            return False
        self.epoch, self.valid_loss = epoch, valid_loss
        self.weights = [s.detach().clone() for s in ema.shadow]
        return True

    def applied(self, ema: EMA) -> contextlib.AbstractContextManager:
        """Temporarily copy the best weights into the model (the EMA's weights if none yet)."""
        return weights_applied(ema.parameters, ema.shadow if self.weights is None else self.weights)

    def describe(self) -> dict:
        if self.kept_start:
            what = (
                "the start weights (init_weights): no epoch of the last stage had a lower "
                "validation loss"
            )
        else:
            what = "EMA weights of the epoch with the lowest validation loss of the last stage"
        return {
            "weights": what,
            "epoch": self.epoch,
            "stage": self.stage,
            "valid_loss": self.valid_loss,
            "kept_start": self.kept_start,
        }

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


@dataclass
class Run:
    """Everything a run holds while it trains; :func:`start_run` builds it."""

    config: TrainConfig
    out: Path
    device: torch.device
    dtype: torch.dtype
    data: dict[str, Any]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    ema: EMA
    runner: StepRunner
    generator: torch.Generator
    train_batches: Any
    valid_batches: Any
    run_info: dict[str, Any]
    best: BestWeights = field(default_factory=BestWeights)
    history: list[dict] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    epoch: int = 0  # epochs completed
    t_session: float = field(default_factory=time.perf_counter)
    checkpoints: bool = True  # write checkpoint.pt (False: a window, which nothing resumes)

    @property
    def session(self) -> dict:
        return self.sessions[-1]

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run (a cycle may have fixed its own length)."""
        return self.schedule.total

    def wall_time_s(self) -> float:
        """Training wall time of all sessions, this one up to now."""
        return (
            sum(s["wall_time_s"] for s in self.sessions[:-1]) + time.perf_counter() - self.t_session
        )


# --- setting a run up -------------------------------------------------------------------------

# settings that may differ between a checkpoint and the resumed run: run length and bookkeeping
RESUMABLE_CHANGES = {
    "max_wall_s",
    "at_wall",
    "progress",
    "checkpoint_every",
    "max_epochs",
    "stage_two_start",
}


def start_run(
    config: TrainConfig, out: Path, resume: bool, command: str | None, checkpoints: bool = True
) -> Run:
    """Data, model, optimiser, schedule and EMA of a run; resumed from ``out``'s checkpoint if any.

    The model starts from ``config.init_weights`` when it is set (a window of a chain), else from
    mace-torch's random initialisation with ``config.seed``.  ``checkpoints=False``: the run
    writes no ``checkpoint.pt`` (its metrics and ``run.json`` still), and cannot be resumed.
    """
    t_session = time.perf_counter()  # a session's wall time includes loading and building
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config)
    dtype = getattr(torch, config.dtype)
    use_graph = bool(config.cuda_graph)
    if use_graph and device.type != "cuda":
        raise TrainingError("cuda_graph needs device cuda; use --set cuda_graph=false on the CPU")
    data = prepare_data(config)
    model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
    if config.init_weights is not None:
        load_init_weights(model, config)
    n_params = count_parameters(model)
    if config.backend == "cueq":
        model = to_cueq(model, device=device.type)
    model = model.to(device)
    runner = make_step_runner(model, config, use_graph)
    train_batches = make_batches(data["train"], device, dtype)
    static = isinstance(train_batches, StaticBatches)
    if use_graph and not static:
        raise TrainingError("cuda_graph needs identical graphs in every batch (StaticBatches)")
    run = Run(
        config=config,
        out=out,
        device=device,
        dtype=dtype,
        data=data,
        model=model,
        optimizer=runner.optimizer,
        schedule=make_schedule(config),
        ema=runner.ema,
        runner=runner,
        generator=torch.Generator().manual_seed(config.seed),
        train_batches=train_batches,
        valid_batches=make_batches(data["valid"], device, dtype),
        run_info={
            "command": command or " ".join(sys.argv),
            "git_commit": git_commit(),
            "device": device_name(device),
            "backend": config.backend,
            "software": software_versions(),
            "n_parameters": n_params,
            "e0s_eV": dict(zip([int(z) for z in Z_TABLE.zs], map(float, data["e0s"]))),
            "scale_eV_per_A": data["scale"],
            "mean_energy_per_atom_eV": data["mean_energy_per_atom"],
            "avg_num_neighbors": data["avg_num_neighbors"],
            "static_batches": static,
            "init_weights": config.init_weights,
            "checkpoints": checkpoints,
            "indices": data["indices"],
        },
        t_session=t_session,
        checkpoints=checkpoints,
    )
    if resume and (out / CHECKPOINT_NAME).exists():
        load_checkpoint(run, out / CHECKPOINT_NAME)
    elif config.init_weights is not None:  # where the run starts: the given weights' errors
        metrics, energy_term, forces_term = validation_terms(run)
        run.run_info["init_valid"] = metrics
        run.best.set_start(run.ema, energy_term, forces_term)  # a candidate for the best
    run.sessions.append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device": device_name(device),
            "command": run.run_info["command"],
            "start_epoch": run.epoch,
            "end_epoch": run.epoch,
            "wall_time_s": 0.0,
        }
    )
    write_json(config.to_dict(), out / "config.json")
    return run


ARCHITECTURE = (
    "r_max",
    "num_bessel",
    "num_polynomial_cutoff",
    "max_ell",
    "num_interactions",
    "hidden_irreps",
    "mlp_irreps",
    "radial_mlp",
    "correlation",
    "use_reduced_cg",
)


def read_saved_model(path: str | os.PathLike) -> dict:
    """The dictionary :func:`save_model` wrote, gzip-compressed (state dict, config, E0s, scale,
    neighbours)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: no such model file")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except gzip.BadGzipFile:
        raise TrainingError(f"{path}: not a gzip-compressed model (a run's model.pt.gz)") from None
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def load_init_weights(model: torch.nn.Module, config: TrainConfig) -> None:
    """Copy the weights of ``config.init_weights`` into ``model`` (same architecture required)."""
    saved = read_saved_model(config.init_weights)
    differ = [k for k in ARCHITECTURE if saved["config"].get(k) != getattr(config, k)]
    if differ:
        raise TrainingError(
            f"{config.init_weights} has another architecture ({', '.join(differ)}): "
            "start it with its own settings or from scratch"
        )
    _load_weights(model, saved, config.dtype)


def _load_weights(model: torch.nn.Module, saved: dict, dtype: str) -> None:
    """Load the state dict of a :func:`read_saved_model` dictionary, floats cast to ``dtype``."""
    to = getattr(torch, dtype)
    model.load_state_dict(
        {k: v.to(to) if v.is_floating_point() else v for k, v in saved["state_dict"].items()}
    )


def load_checkpoint(run: Run, path: Path) -> None:
    """Restore a run from its checkpoint; refuse one written with other settings."""
    state = torch.load(path, map_location=run.device, weights_only=False)
    old, new = state["config"], run.config.to_dict()
    changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if not set(changed) <= RESUMABLE_CHANGES:
        raise TrainingError(
            f"checkpoint {path} was written with other settings ({', '.join(changed)}): "
            "use a new output folder or --no-resume"
        )
    old_start, new_start = old["stage_two_start"], new["stage_two_start"]
    if "stage_two_start" in changed and (
        (old_start is not None and state["epoch"] > old_start)
        or (new_start is not None and new_start < state["epoch"])
    ):
        raise TrainingError(
            f"checkpoint {path} is at epoch {state['epoch']}: stage_two_start can "
            f"change only while both the old ({old_start}) and the new ({new_start}) "
            "start lie ahead of it"
        )
    for name in STATEFUL:
        getattr(run, name).load_state_dict(state[name])
    run.generator.set_state(state["generator"].cpu())
    run.history, run.sessions, run.epoch = state["history"], state["sessions"], state["epoch"]


# --- a checkpoint -----------------------------------------------------------------------------


def save_checkpoint(run: Run) -> None:
    """Write everything that resumes the run exactly (atomically), its metrics and run.json.

    A run without checkpoints (``run.checkpoints`` False) writes only the metrics and run.json.
    """
    run.session["end_epoch"] = run.epoch
    run.session["wall_time_s"] = time.perf_counter() - run.t_session
    write_metrics_csv(run.history, run.out / "metrics.csv")
    write_run_json(run, "running")
    if not run.checkpoints:
        return
    state = {name: getattr(run, name).state_dict() for name in STATEFUL}
    state.update(config=run.config.to_dict(), generator=run.generator.get_state())
    state.update(history=run.history, sessions=run.sessions, epoch=run.epoch)
    tmp = run.out / (CHECKPOINT_NAME + ".tmp")  # written whole, then renamed: never half a file
    torch.save(state, tmp)
    os.replace(tmp, run.out / CHECKPOINT_NAME)


def write_run_json(run: Run, status: str) -> None:
    write_json(
        {
            **run.run_info,
            "schedule": run.schedule.describe(),
            "sessions": run.sessions,
            "epochs_completed": run.epoch,
            "wall_time_s": sum(s["wall_time_s"] for s in run.sessions),
            "status": status,
        },
        run.out / "run.json",
    )


# --- an epoch ---------------------------------------------------------------------------------


def validation_terms(run: Run) -> tuple[dict, float, float]:
    """Validation errors of the EMA weights and the two terms of the loss: the mean squared
    per-atom energy error and the mean squared force-component error."""
    run.model.eval()
    with run.ema.average_parameters():
        valid = predict(run.model, run.valid_batches, run.config.valid_batch_size)
    n_atoms = valid["forces_ref"].shape[1]
    energy_term = np.mean(((valid["energy_pred"] - valid["energy_ref"]) / n_atoms) ** 2)
    forces_term = np.mean((valid["forces_pred"] - valid["forces_ref"]) ** 2)
    return error_metrics(valid), float(energy_term), float(forces_term)


def validate(run: Run, energy_weight: float, forces_weight: float) -> tuple[dict, float]:
    """Validation errors of the EMA weights and the loss with the given weights."""
    metrics, energy_term, forces_term = validation_terms(run)
    return metrics, energy_weight * energy_term + forces_weight * forces_term


def train_epoch(run: Run, epoch_index: int, stop: _StopFlag) -> dict | None:
    """One epoch: set stage and learning rate, one pass of optimiser steps, then validate.

    Returns the epoch's row of ``metrics.csv``, or None when a second signal stopped it midway.
    """
    config, t_epoch = run.config, time.perf_counter()
    stage = run.schedule.stage(epoch_index)
    w_e = config.stage_two_energy_weight if stage == 2 else config.energy_weight
    w_f = config.stage_two_forces_weight if stage == 2 else config.forces_weight
    lr = run.schedule.lr(epoch_index)
    run.runner.set_lr(lr)
    run.runner.set_loss_weights(w_e, w_f)

    run.model.train()
    total, count = torch.zeros((), device=run.device, dtype=run.dtype), 0
    for batch in run.train_batches.iterate(
        config.batch_size, shuffle=True, generator=run.generator
    ):
        total += run.runner.step(batch)
        count += 1
        if stop.now:
            return None
    train_loss = float(total) / count
    if not math.isfinite(train_loss):
        raise NonFiniteLoss(f"training loss became {train_loss} at epoch {epoch_index + 1}")

    metrics, valid_loss = validate(run, w_e, w_f)
    run.schedule.after_validation(epoch_index, valid_loss)
    run.best.offer(epoch_index + 1, stage, valid_loss, run.ema, (w_e, w_f))
    values = [epoch_index + 1, stage, lr, w_e, w_f, train_loss, valid_loss]
    values += [metrics[name] for name in VALID_METRICS]
    values += [time.perf_counter() - t_epoch, run.wall_time_s()]
    return dict(zip(METRIC_FIELDS, values, strict=True))


# --- a cycle: epochs until the end, the wall-time limit or a signal ---------------------------


def train_epochs(run: Run, plan: Callable[[Run], None] | None = None) -> str:
    """Train epoch after epoch; checkpoint as configured; return why it stopped.

    ``plan(run)``, if given, is called after every epoch and may fix the cycle's length
    (:meth:`~acecourse.training.schedules.CycleSchedule.plan`).  Returns "finished",
    "finished_at_wall_time" or "paused" (``max_wall_s``, or a signal), or "interrupted" (a second
    signal: the unfinished epoch is dropped and the last checkpoint kept).

    A run that ends at its time limit (``at_wall="finish"``, a window) also ends, evaluated, at
    a signal ("finished_at_signal", after the current epoch) and at a non-finite training loss
    ("stopped_at_non_finite_loss": the diverged epoch is dropped and the best weights so far,
    or the start weights, are the ones tested).  Checkpoints: every ``checkpoint_every`` epochs,
    and every 120 s for a run that pauses at its time limit; none when ``run.checkpoints`` is
    False.  :func:`end_run` writes the last one.
    """
    from tqdm.auto import tqdm

    config, stop = run.config, _StopFlag()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    last_ckpt = time.perf_counter()
    bar = tqdm(
        initial=run.epoch, total=run.total_epochs, desc="epochs", disable=not config.progress
    )
    try:
        while run.epoch < run.total_epochs:
            try:
                row = train_epoch(run, run.epoch, stop)
            except NonFiniteLoss as err:
                if config.at_wall != "finish" or run.best.weights is None:
                    raise
                run.run_info["stopped"] = f"{err}: ended with the best weights so far"
                print(f"warning: {run.run_info['stopped']}", file=sys.stderr, flush=True)
                return "stopped_at_non_finite_loss"
            if row is None:
                return "interrupted"
            run.history.append(row)
            run.epoch = row["epoch"]
            if plan is not None:
                plan(run)
            bar.total = run.total_epochs
            bar.update(1)
            bar.set_postfix(
                F_MAE=f"{row['valid_forces_mae_meV_per_A']:.2f}",
                E_MAE=f"{row['valid_energy_mae_meV']:.2f}",
            )
            if run.epoch >= run.total_epochs:
                return "finished"  # end_run writes the last checkpoint
            if run.checkpoints and (
                run.epoch % config.checkpoint_every == 0
                or (config.at_wall == "pause" and time.perf_counter() - last_ckpt > 120)
            ):
                save_checkpoint(run)
                last_ckpt = time.perf_counter()
            if stop.stop:  # pause (or end, for a run that finishes) after this epoch
                return "paused" if config.at_wall == "pause" else "finished_at_signal"
            # stop when the next epoch might not fit (a quarter of an epoch as margin)
            needed = time.perf_counter() - run.t_session + 1.25 * row["epoch_time_s"]
            if config.max_wall_s is not None and needed > config.max_wall_s:
                return "paused" if config.at_wall == "pause" else "finished_at_wall_time"
        return "finished"
    finally:
        bar.close()
        for s, handler in old_handlers.items():
            signal.signal(s, handler)


def train(
    config: TrainConfig,
    output_dir: str | os.PathLike,
    resume: bool = True,
    command: str | None = None,
    plan: Callable[[Run], None] | None = None,
    checkpoints: bool = True,
) -> dict[str, Any]:
    """Train (or resume training) and write the run's artifacts into ``output_dir``.

    ``checkpoints=False``: write no ``checkpoint.pt`` (a window of the chain, which nothing
    resumes: saving ~100 MB of tensors would only cost its time).

    Returns
    -------
    dict
        ``status``: "finished"; "finished_at_wall_time" (``max_wall_s`` with ``at_wall="finish"``,
        evaluated; with it also "finished_at_signal" and "stopped_at_non_finite_loss", see
        :func:`train_epochs`); or "paused" (``max_wall_s`` with ``at_wall="pause"``, or
        SIGINT/SIGTERM: resumable, and the resumed run equals an uninterrupted one).  ``epoch``:
        epochs completed (for "paused", those in the checkpoint).  When finished, ``test`` (test
        metrics of the best validation EMA weights, see :class:`BestWeights`) and ``best_epoch``.
    """
    with default_dtype(getattr(torch, config.dtype)):
        run = start_run(config, Path(output_dir), resume, command, checkpoints)
        status = train_epochs(run, plan)
        return end_run(run, status)


def end_run(run: Run, status: str) -> dict[str, Any]:
    """Checkpoint a paused run, or evaluate and export a finished one."""
    run.run_info["cuda_graph_used"] = run.runner.graph is not None
    run.run_info["cuda_graph_error"] = run.runner.capture_error
    result = {"status": status, "epoch": run.epoch, "output_dir": str(run.out)}
    if status == "interrupted":
        # the model, optimiser, EMA and generator have moved into the unfinished epoch: saving
        # them as epoch `epoch` would make the resumed run differ; keep the last checkpoint
        return {**result, "status": "paused", "epoch": run.session["end_epoch"]}
    save_checkpoint(run)
    if status == "paused":
        return result
    run.run_info["evaluated_weights"] = run.best.describe()
    t_finalize = time.perf_counter()
    result.update(finalize(run))
    run.run_info["finalize_s"] = time.perf_counter() - t_finalize  # sizes a window's reserve
    result["best_epoch"] = run.best.epoch
    run.session["wall_time_s"] = time.perf_counter() - run.t_session
    write_run_json(run, status)
    return result


# --- the end: test errors of the best weights -------------------------------------------------


def finalize(run: Run) -> dict[str, dict]:
    """Test-set evaluation of the best validation EMA weights; writes metrics, predictions, model.

    Returns ``{"test": metrics}``, plus ``"test_float64"`` for a float32 run: float32 cannot
    resolve sub-meV errors of a 4209 eV energy, so the exported weights are evaluated once more
    in float64 (:mod:`acecourse.training.evaluate`).
    """
    config, model, out = run.config, run.model, run.out
    test_batches = make_batches(run.data["test"], run.device, run.dtype)
    model.eval()
    with run.best.applied(run.ema):
        test_pred = predict(model, test_batches, config.valid_batch_size)
        export = to_e3nn(model, device="cpu") if config.backend == "cueq" else model
        # clone: on the CPU .cpu() returns the parameter itself, which the end of this block
        # overwrites with the raw weights again
        state = {k: v.detach().cpu().clone() for k, v in export.state_dict().items()}
    test = error_metrics(test_pred, run.data["test_numbers"])
    write_json(test, out / "test_metrics.json")
    np.savez_compressed(
        out / "test_predictions.npz",
        numbers=run.data["test_numbers"],
        **{k: v.astype(np.float32) for k, v in test_pred.items()},
    )
    save_model(
        {
            "state_dict": state,
            "config": config.to_dict(),
            "e0s": np.asarray(run.data["e0s"]).tolist(),
            "scale": run.data["scale"],
            "avg_num_neighbors": run.data["avg_num_neighbors"],
            "weights": run.best.describe(),
        },
        out / "model.pt.gz",
    )
    if run.dtype == torch.float64:
        return {"test": test}
    from acecourse.training.evaluate import evaluate_float64

    record = evaluate_float64(
        out, run.device.type, config.data_dir, config.valid_batch_size, command="finalize"
    )
    return {"test": test, "test_float64": record["metrics"]}


def save_model(saved: dict, path: Path) -> None:
    """Write a trained model (state dict in the run's dtype + what rebuilds it), gzip-compressed.

    The generalised Clebsch-Gordan matrices among the buffers are sparse: gzip takes the
    256-channel model from 22 MB to 13 MB.
    """
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(buffer.getvalue())


def load_trained_model(path: str | os.PathLike, dtype: str = "float64") -> torch.nn.Module:
    """Rebuild a trained model from a run's ``model.pt.gz`` (e3nn backend, CPU, in ``dtype``)."""
    saved = read_saved_model(path)
    config = config_from_dict({**saved["config"], "dtype": dtype})
    model = build_model(config, np.array(saved["e0s"]), saved["scale"], saved["avg_num_neighbors"])
    _load_weights(model, saved, dtype)
    return model.eval()
