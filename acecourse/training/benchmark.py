"""Time training steps of the same MACE model on mace-torch's e3nn and cuEquivariance paths.

Both backends start from the same weights (the cuEquivariance model is converted from the e3nn
one with mace-torch's converter), see the same batches, and run the full training step
(forward, forces by autograd, loss, backward, AMSGrad step).  The benchmark also checks that the
two backends predict the same energies and forces for one batch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from acecourse.training.config import TrainConfig
from acecourse.training.data import make_batches
from acecourse.training.model import build_model, parameter_groups, to_cueq
from acecourse.training.trainer import (
    device_name,
    loss_function,
    prepare_data,
    resolve_device,
    software_versions,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, batches, config: TrainConfig, steps: int, device) -> dict[str, float]:
    """Median and mean wall time (ms) of training steps after a warm-up."""
    optimizer = torch.optim.Adam(parameter_groups(model, config), lr=config.lr, amsgrad=True)
    generator = torch.Generator().manual_seed(0)
    iterator = batches.iterate(config.batch_size, shuffle=True, generator=generator)
    times = []
    for step in range(steps + 10):
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = batches.iterate(config.batch_size, shuffle=True, generator=generator)
            batch = next(iterator)
        _sync(device)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        pred = model(batch, training=True, compute_force=True)
        loss = loss_function(pred, batch, config.energy_weight, config.forces_weight)
        loss.backward()
        optimizer.step()
        _sync(device)
        if step >= 10:
            times.append(time.perf_counter() - t0)
    times_t = torch.tensor(times)
    steps_per_epoch = -(-config.n_train // config.batch_size)
    return {
        "median_ms_per_step": float(times_t.median()) * 1e3,
        "mean_ms_per_step": float(times_t.mean()) * 1e3,
        "steps_per_epoch": steps_per_epoch,
        "epoch_s_from_median": float(times_t.median()) * steps_per_epoch,
    }


def benchmark(
    config: TrainConfig, backends: list[str], steps: int, out_file: str | Path
) -> dict[str, Any]:
    """Time ``steps`` training steps per backend; write and return a JSON-able dict."""
    torch.set_default_dtype(getattr(torch, config.dtype))
    device = resolve_device(config)
    dtype = getattr(torch, config.dtype)
    data = prepare_data(config)
    batches = make_batches(data["train"], device, dtype)
    reference = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
    result: dict[str, Any] = {
        "device": device_name(device),
        "software": software_versions(),
        "config": config.to_dict(),
        "steps": steps,
        "backends": {},
    }
    probe = batches.batch(torch.arange(config.batch_size))
    outputs = {}
    for backend in backends:
        if backend == "cueq":
            model = to_cueq(reference, device=device.type).to(device)
        elif backend == "e3nn":
            model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
            model.load_state_dict(reference.state_dict())
            model = model.to(device)
        else:
            raise ValueError(f"unknown backend {backend!r}")
        pred = model(probe, training=False, compute_force=True)
        outputs[backend] = (pred["energy"].detach().double(), pred["forces"].detach().double())
        result["backends"][backend] = time_steps(model, batches, config, steps, device)
        del model
    if len(outputs) == 2:
        (e1, f1), (e2, f2) = outputs.values()
        result["max_abs_energy_difference_eV"] = float((e1 - e2).abs().max())
        result["max_abs_force_difference_eV_per_A"] = float((f1 - f2).abs().max())
    if {"e3nn", "cueq"} <= set(result["backends"]):
        result["speedup_cueq_over_e3nn"] = (
            result["backends"]["e3nn"]["median_ms_per_step"]
            / result["backends"]["cueq"]["median_ms_per_step"]
        )
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(result, indent=2) + "\n")
    return result
