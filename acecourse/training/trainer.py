"""The training loop: mace-torch's model and recipe, our loop, checkpoint and resume.

Why our own loop rather than ``mace_run_train``?  The recipe is the same (Adam with AMSGrad,
per-atom energy + force MSE, EMA, reduce-on-plateau, a second stage with new loss weights), but a
short loop is readable in the chapter, writes the artifacts the chapter plots, and feeds the model
from device-resident batches (:mod:`acecourse.training.data`), which matters when a 9-atom molecule
leaves the GPU waiting on Python.

A run writes into its output folder:

- ``config.json``: the :class:`TrainConfig`;
- ``metrics.csv``: one row per epoch (train loss, validation MAE/RMSE, learning rate, wall time);
- ``run.json``: command, git commit, device, software versions, sessions, wall time, parameters;
- ``test_metrics.json`` and ``test_predictions.npz``: final test-set errors and predictions;
- ``model.pt.gz``: the EMA weights (float32 state dict of the e3nn model) with what rebuilds it;
- ``checkpoint.pt`` (not committed): everything needed to resume.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acecourse.data.rmd17 import load_rmd17_ethanol, train_valid_split
from acecourse.training.config import TrainConfig, held_out_test_indices
from acecourse.training.data import (
    Z_TABLE,
    atomic_reference_energies,
    energy_statistics,
    make_batches,
    to_atomic_data,
)
from acecourse.training.model import build_model, count_parameters, parameter_groups, to_cueq
from acecourse.training.steps import EMA, StepRunner
from acecourse.training.trainer_loss import loss_function  # noqa: F401 (re-export)

CHECKPOINT_NAME = "checkpoint.pt"
METRIC_FIELDS = [
    "epoch",
    "stage",
    "lr",
    "energy_weight",
    "forces_weight",
    "train_loss",
    "valid_loss",
    "valid_energy_mae_meV",
    "valid_energy_rmse_meV",
    "valid_forces_mae_meV_per_A",
    "valid_forces_rmse_meV_per_A",
    "epoch_time_s",
    "wall_time_s",
]


class TrainingError(RuntimeError):
    """A run cannot start or resume (bad settings, no GPU, incompatible checkpoint)."""


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
    e_ref, e_pred, f_ref, f_pred = [], [], [], []
    for batch in batches.iterate(batch_size, shuffle=False):
        out = model(batch, training=False, compute_force=True)
        e_ref.append(batch["energy"].detach().double().cpu())
        e_pred.append(out["energy"].detach().double().cpu())
        n_graphs = batch["energy"].shape[0]
        f_ref.append(batch["forces"].detach().double().cpu().reshape(n_graphs, -1, 3))
        f_pred.append(out["forces"].detach().double().cpu().reshape(n_graphs, -1, 3))
    return {
        "energy_ref": torch.cat(e_ref).numpy(),
        "energy_pred": torch.cat(e_pred).numpy(),
        "forces_ref": torch.cat(f_ref).numpy(),
        "forces_pred": torch.cat(f_pred).numpy(),
    }


def error_metrics(
    pred: dict[str, np.ndarray], numbers: np.ndarray | None = None
) -> dict[str, float]:
    """MAE and RMSE in meV (energy per molecule and per atom) and meV/Å (force components)."""
    n_atoms = pred["forces_ref"].shape[1]
    de = (pred["energy_pred"] - pred["energy_ref"]) * 1000.0
    df = (pred["forces_pred"] - pred["forces_ref"]) * 1000.0
    out = {
        "n_frames": int(de.size),
        "energy_mae_meV": float(np.mean(np.abs(de))),
        "energy_rmse_meV": float(np.sqrt(np.mean(de**2))),
        "energy_mae_meV_per_atom": float(np.mean(np.abs(de)) / n_atoms),
        "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(de**2)) / n_atoms),
        "forces_mae_meV_per_A": float(np.mean(np.abs(df))),
        "forces_rmse_meV_per_A": float(np.sqrt(np.mean(df**2))),
    }
    if numbers is not None:
        from ase.data import chemical_symbols

        for z in sorted({int(z) for z in numbers}):
            mask = np.asarray(numbers) == z
            out[f"forces_mae_meV_per_A_{chemical_symbols[z]}"] = float(np.mean(np.abs(df[:, mask])))
    return out


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("ACECOURSE_GIT_COMMIT", "unknown")


def software_versions() -> dict[str, str]:
    """Versions of the libraries a run depends on."""
    import e3nn
    import mace

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "mace-torch": getattr(mace, "__version__", "unknown"),
        "e3nn": e3nn.__version__,
        "numpy": np.__version__,
    }
    try:
        import cuequivariance_torch

        versions["cuequivariance-torch"] = cuequivariance_torch.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        versions["cuda"] = str(torch.version.cuda)
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _atomic_write(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _write_metrics_csv(history: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row[k] for k in METRIC_FIELDS})


def prepare_data(config: TrainConfig) -> dict[str, Any]:
    """Load the train/valid/test frames of a config and the statistics that set up the model."""
    train_idx, valid_idx = train_valid_split(1000, config.n_valid, seed=config.split_seed)
    if config.n_train > len(train_idx):
        raise TrainingError(f"n_train={config.n_train} exceeds the {len(train_idx)} frames left")
    train_idx = np.sort(
        np.random.default_rng(config.split_seed).permutation(train_idx)[: config.n_train]
    )
    train_frames = load_rmd17_ethanol("train", config.data_dir, indices=train_idx)
    valid_frames = load_rmd17_ethanol("train", config.data_dir, indices=valid_idx)
    test_idx = held_out_test_indices(config)
    test_frames = load_rmd17_ethanol("test", config.data_dir, indices=test_idx)
    stats = energy_statistics(train_frames)
    e0s = atomic_reference_energies(train_frames, config.e0s)
    train_data = to_atomic_data(train_frames, config.r_max)
    n_edges = sum(int(d.edge_index.shape[1]) for d in train_data)
    n_nodes = sum(int(d.positions.shape[0]) for d in train_data)
    return {
        "train": train_data,
        "valid": to_atomic_data(valid_frames, config.r_max),
        "test": to_atomic_data(test_frames, config.r_max),
        "test_numbers": test_frames[0].numbers,
        "indices": {
            "train": train_idx.tolist(),
            "valid": valid_idx.tolist(),
            "test": test_idx.tolist(),
        },
        "e0s": e0s,
        "scale": stats["rms_force"],
        "mean_energy_per_atom": stats["mean_energy_per_atom"],
        "avg_num_neighbors": n_edges / n_nodes,
    }


class _StopFlag:
    """SIGINT/SIGTERM handler.  First signal: finish the current epoch, checkpoint it, pause.
    Second signal: stop at once and keep the last checkpoint (the steps of the unfinished epoch
    are dropped, so a resumed run stays the same run as an uninterrupted one)."""

    def __init__(self) -> None:
        self.signals = 0

    @property
    def stop(self) -> bool:
        return self.signals > 0

    @property
    def now(self) -> bool:
        return self.signals > 1

    def __call__(self, signum, frame) -> None:
        self.signals += 1
        what = "after this epoch (signal again to stop now)" if self.signals == 1 else "now"
        print(f"signal {signum}: pausing {what}", file=sys.stderr, flush=True)


def train(
    config: TrainConfig,
    output_dir: str | os.PathLike,
    resume: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train (or resume training) and write the run's artifacts into ``output_dir``.

    Returns
    -------
    dict
        ``status``: "finished"; "finished_at_wall_time" (``max_wall_s`` with ``at_wall="finish"``,
        evaluated); or "paused" (``max_wall_s`` with ``at_wall="pause"``, or SIGINT/SIGTERM:
        resumable, and the resumed run equals an uninterrupted one).  ``epoch``: epochs completed
        (for "paused", those in the checkpoint).  When finished, ``test`` (test metrics).
    """
    previous_dtype = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, config.dtype))
    try:
        return _train(config, output_dir, resume, command)
    finally:
        torch.set_default_dtype(previous_dtype)


def _train(config: TrainConfig, output_dir, resume: bool, command: str | None) -> dict[str, Any]:
    t_session = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config)
    dtype = getattr(torch, config.dtype)
    ckpt_path = out / CHECKPOINT_NAME

    data = prepare_data(config)
    model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
    n_params = count_parameters(model)
    if config.backend == "cueq":
        model = to_cueq(model, device=device.type)
    model = model.to(device)

    use_graph = bool(config.cuda_graph)
    if use_graph and device.type != "cuda":
        raise TrainingError("cuda_graph needs device cuda; use --set cuda_graph=false on the CPU")
    groups = parameter_groups(model, config)
    if use_graph:  # learning rates as device tensors, so a recorded step sees changes
        for group in groups:
            group["lr"] = torch.tensor(config.lr, device=device, dtype=dtype)
    optimizer = torch.optim.Adam(groups, lr=config.lr, amsgrad=config.amsgrad, capturable=use_graph)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.scheduler_patience
    )
    ema = EMA(model.parameters(), decay=config.ema_decay)

    history: list[dict] = []
    sessions: list[dict] = []
    start_epoch = 0
    generator = torch.Generator().manual_seed(config.seed)
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        if state["config"] != config.to_dict():
            new_config = config.to_dict()
            changed = sorted(
                k
                for k in state["config"].keys() | new_config.keys()
                if state["config"].get(k) != new_config.get(k)
            )
            allowed = {
                "max_wall_s",
                "at_wall",
                "progress",
                "checkpoint_every",
                "max_epochs",
                "stage_two_start",
            }
            if not set(changed) <= allowed:
                raise TrainingError(
                    f"checkpoint {ckpt_path} was written with other settings ({', '.join(changed)}): "
                    "use a new output folder or --no-resume"
                )
            old_start, new_start = state["config"]["stage_two_start"], config.stage_two_start
            if "stage_two_start" in changed and (
                (old_start is not None and state["epoch"] > old_start)
                or (new_start is not None and new_start < state["epoch"])
            ):
                raise TrainingError(
                    f"checkpoint {ckpt_path} is at epoch {state['epoch']}: stage_two_start can "
                    f"change only while both the old ({old_start}) and the new ({new_start}) "
                    "start lie ahead of it"
                )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ema.load_state_dict(state["ema"])
        generator.set_state(state["generator"].cpu())
        history, sessions, start_epoch = state["history"], state["sessions"], state["epoch"]

    session = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": device_name(device),
        "command": command or " ".join(sys.argv),
        "start_epoch": start_epoch,
        "end_epoch": start_epoch,
        "wall_time_s": 0.0,
    }
    sessions.append(session)
    train_batches = make_batches(data["train"], device, dtype)
    valid_batches = make_batches(data["valid"], device, dtype)
    run_info = {
        "command": command or " ".join(sys.argv),
        "git_commit": _git_commit(),
        "device": device_name(device),
        "backend": config.backend,
        "software": software_versions(),
        "n_parameters": n_params,
        "e0s_eV": dict(zip([int(z) for z in Z_TABLE.zs], map(float, data["e0s"]))),
        "scale_eV_per_A": data["scale"],
        "mean_energy_per_atom_eV": data["mean_energy_per_atom"],
        "avg_num_neighbors": data["avg_num_neighbors"],
        "static_batches": type(train_batches).__name__ == "StaticBatches",
        "indices": data["indices"],
    }
    (out / "config.json").write_text(config.to_json() + "\n")

    def save_checkpoint(epoch: int) -> None:
        session["end_epoch"] = epoch
        session["wall_time_s"] = time.perf_counter() - t_session
        _atomic_write(
            {
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "ema": ema.state_dict(),
                "generator": generator.get_state(),
                "history": history,
                "sessions": sessions,
                "epoch": epoch,
            },
            ckpt_path,
        )
        _write_metrics_csv(history, out / "metrics.csv")
        _write_json(
            {
                **run_info,
                "sessions": sessions,
                "epochs_completed": epoch,
                "wall_time_s": sum(s["wall_time_s"] for s in sessions),
                "status": "running",
            },
            out / "run.json",
        )

    if use_graph and not run_info["static_batches"]:
        raise TrainingError("cuda_graph needs identical graphs in every batch (StaticBatches)")
    runner = StepRunner(model, optimizer, ema, config.clip_grad, use_graph)
    stop = _StopFlag()
    old_handlers = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    last_ckpt = time.perf_counter()
    epoch = start_epoch
    status = "finished"
    try:
        from tqdm.auto import tqdm

        bar = tqdm(
            range(start_epoch, config.max_epochs),
            initial=start_epoch,
            total=config.max_epochs,
            desc="epochs",
            disable=not config.progress,
        )
        for epoch_index in bar:
            t_epoch = time.perf_counter()
            stage_two = config.stage_two_start is not None and epoch_index >= config.stage_two_start
            if stage_two and (not history or history[-1]["stage"] == 1):
                runner.set_lr(config.stage_two_lr)
            w_e = config.stage_two_energy_weight if stage_two else config.energy_weight
            w_f = config.stage_two_forces_weight if stage_two else config.forces_weight
            runner.set_loss_weights(w_e, w_f)

            model.train()
            total, count = torch.zeros((), device=device, dtype=dtype), 0
            for batch in train_batches.iterate(
                config.batch_size, shuffle=True, generator=generator
            ):
                total += runner.step(batch)
                count += 1
                if stop.now:
                    break
            if stop.now:  # a second signal: drop the unfinished epoch, keep the last checkpoint
                status = "interrupted"
                break
            train_loss = float(total) / count
            if not math.isfinite(train_loss):
                raise TrainingError(f"training loss became {train_loss} at epoch {epoch_index + 1}")

            model.eval()
            with ema.average_parameters():
                valid = predict(model, valid_batches, config.valid_batch_size)
            metrics = error_metrics(valid)
            valid_loss = w_e * float(
                np.mean(
                    ((valid["energy_pred"] - valid["energy_ref"]) / valid["forces_ref"].shape[1])
                    ** 2
                )
            ) + w_f * float(np.mean((valid["forces_pred"] - valid["forces_ref"]) ** 2))
            if not stage_two:
                scheduler.step(valid_loss)
                runner.set_lr(float(optimizer.param_groups[0]["lr"]))
            epoch = epoch_index + 1
            history.append(
                {
                    "epoch": epoch,
                    "stage": 2 if stage_two else 1,
                    "lr": float(optimizer.param_groups[0]["lr"]),
                    "energy_weight": w_e,
                    "forces_weight": w_f,
                    "train_loss": train_loss,
                    "valid_loss": valid_loss,
                    "valid_energy_mae_meV": metrics["energy_mae_meV"],
                    "valid_energy_rmse_meV": metrics["energy_rmse_meV"],
                    "valid_forces_mae_meV_per_A": metrics["forces_mae_meV_per_A"],
                    "valid_forces_rmse_meV_per_A": metrics["forces_rmse_meV_per_A"],
                    "epoch_time_s": time.perf_counter() - t_epoch,
                    "wall_time_s": sum(s["wall_time_s"] for s in sessions[:-1])
                    + time.perf_counter()
                    - t_session,
                }
            )
            bar.set_postfix(
                F_MAE=f"{metrics['forces_mae_meV_per_A']:.2f}",
                E_MAE=f"{metrics['energy_mae_meV']:.2f}",
            )
            elapsed = time.perf_counter() - t_session
            if (
                epoch % config.checkpoint_every == 0
                or time.perf_counter() - last_ckpt > 120
                or epoch == config.max_epochs
            ):
                save_checkpoint(epoch)
                last_ckpt = time.perf_counter()
            if stop.stop and epoch < config.max_epochs:  # one signal: pause after this epoch
                status = "paused"
                break
            out_of_time = (
                config.max_wall_s is not None
                and elapsed + 2 * history[-1]["epoch_time_s"] > config.max_wall_s
            )
            if out_of_time and epoch < config.max_epochs:
                status = "paused" if config.at_wall == "pause" else "finished_at_wall_time"
                break
        bar.close()
    finally:
        for s, handler in old_handlers.items():
            signal.signal(s, handler)

    run_info["cuda_graph_used"] = runner.graph is not None
    run_info["cuda_graph_error"] = runner.capture_error
    if status == "interrupted":
        # the model, optimiser, EMA and generator have moved into the unfinished epoch: saving
        # them as epoch `epoch` would make the resumed run differ; keep the last checkpoint
        return {"status": "paused", "epoch": session["end_epoch"], "output_dir": str(out)}
    if status == "paused":
        save_checkpoint(epoch)
        return {"status": status, "epoch": epoch, "output_dir": str(out)}

    save_checkpoint(epoch)
    result = {"status": status, "epoch": epoch, "output_dir": str(out)}
    result.update(finalize(model, ema, data, config, out, device, dtype))
    session["wall_time_s"] = time.perf_counter() - t_session
    _write_json(
        {
            **run_info,
            "sessions": sessions,
            "epochs_completed": epoch,
            "wall_time_s": sum(s["wall_time_s"] for s in sessions),
            "status": status,
        },
        out / "run.json",
    )
    return result


def finalize(model, ema, data, config, out: Path, device, dtype) -> dict[str, dict]:
    """Test-set evaluation with the EMA weights; writes metrics, predictions and the model.

    Returns ``{"test": metrics}``, plus ``"test_float64"`` for a float32 run: float32 cannot
    resolve sub-meV errors of a 4209 eV energy, so the exported weights are evaluated once more
    in float64 (:mod:`acecourse.training.evaluate`).
    """
    test_batches = make_batches(data["test"], device, dtype)
    model.eval()
    with ema.average_parameters():
        test_pred = predict(model, test_batches, config.valid_batch_size)
        export = model
        if config.backend == "cueq":
            from acecourse.training.model import to_e3nn

            export = to_e3nn(model, device="cpu")
        # clone: on a CPU float32 run .cpu().float() returns the parameter itself, which the end
        # of this block overwrites with the raw weights again
        state = {
            k: (v.detach().cpu().float() if v.is_floating_point() else v.detach().cpu()).clone()
            for k, v in export.state_dict().items()
        }
    test = error_metrics(test_pred, data["test_numbers"])
    _write_json(test, out / "test_metrics.json")
    np.savez_compressed(
        out / "test_predictions.npz",
        numbers=data["test_numbers"],
        **{k: v.astype(np.float32) for k, v in test_pred.items()},
    )
    save_model(
        {
            "state_dict": state,
            "config": config.to_dict(),
            "e0s": np.asarray(data["e0s"]).tolist(),
            "scale": data["scale"],
            "avg_num_neighbors": data["avg_num_neighbors"],
        },
        out / "model.pt.gz",
    )
    if dtype == torch.float64:
        return {"test": test}
    from acecourse.training.evaluate import evaluate_float64

    record = evaluate_float64(
        out, device.type, config.data_dir, config.valid_batch_size, command="finalize"
    )
    return {"test": test, "test_float64": record["metrics"]}


def save_model(saved: dict, path: Path) -> None:
    """Write a trained model (state dict in float32 + what rebuilds it), gzip-compressed.

    The generalised Clebsch-Gordan matrices among the buffers are sparse: gzip takes the
    256-channel model from 22 MB to 13 MB.
    """
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    with gzip.open(path, "wb", compresslevel=6) as f:
        f.write(buffer.getvalue())


def load_trained_model(path: str | os.PathLike, dtype: str = "float64") -> torch.nn.Module:
    """Rebuild a trained model from a run's ``model.pt.gz`` (e3nn backend, CPU, in ``dtype``)."""
    from acecourse.training.config import TrainConfig

    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            saved = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=False)
    else:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    config = TrainConfig(**{**saved["config"], "dtype": dtype})
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        model = build_model(
            config, np.array(saved["e0s"]), saved["scale"], saved["avg_num_neighbors"]
        )
        model.load_state_dict(
            {
                k: (v.to(getattr(torch, dtype)) if v.is_floating_point() else v)
                for k, v in saved["state_dict"].items()
            }
        )
    finally:
        torch.set_default_dtype(previous)
    return model.eval()
