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
from acecourse.training.steps import EMA, StepRunner
from acecourse.training.trainer import (
    device_name,
    prepare_data,
    resolve_device,
    software_versions,
)

BACKENDS = ("e3nn", "cueq", "e3nn+graph", "cueq+graph")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    model, batches, config: TrainConfig, steps: int, device, use_graph: bool = False
) -> dict[str, float]:
    """Median, mean and minimum wall time (ms) of full training steps (with EMA) after a warm-up.

    The minimum is the estimate least affected by other load on the machine (it can only be
    raised by interference, never lowered), the one to compare design points with on a shared CPU.
    """
    groups = parameter_groups(model, config)
    if use_graph:
        for group in groups:
            group["lr"] = torch.tensor(config.lr, device=device)
    optimizer = torch.optim.Adam(groups, lr=config.lr, amsgrad=True, capturable=use_graph)
    runner = StepRunner(
        model, optimizer, EMA(model.parameters(), 0.99), config.clip_grad, use_graph
    )
    runner.set_loss_weights(config.energy_weight, config.forces_weight)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(batches), generator=generator)
    times, losses = [], []
    for step in range(steps + 10):
        start = (step * config.batch_size) % (len(batches) - config.batch_size)
        batch = batches.batch(order[start : start + config.batch_size])
        _sync(device)
        t0 = time.perf_counter()
        loss = runner.step(batch)
        _sync(device)
        losses.append(float(loss))
        if step >= 10:
            times.append(time.perf_counter() - t0)
    times_t = torch.tensor(times)
    steps_per_epoch = -(-config.n_train // config.batch_size)
    return {
        "cuda_graph_used": runner.graph is not None,
        "cuda_graph_error": runner.capture_error,
        "median_ms_per_step": float(times_t.median()) * 1e3,
        "mean_ms_per_step": float(times_t.mean()) * 1e3,
        "min_ms_per_step": float(times_t.min()) * 1e3,
        "steps_per_epoch": steps_per_epoch,
        "epoch_s_from_median": float(times_t.median()) * steps_per_epoch,
        "losses": losses,
    }


def benchmark(
    config: TrainConfig, backends: list[str], steps: int, out_file: str | Path
) -> dict[str, Any]:
    """Time ``steps`` training steps per backend; write and return a JSON-able dict."""
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(
            f"unknown backend {', '.join(map(repr, unknown))}; choose from {', '.join(BACKENDS)}"
        )
    if steps < 1:
        raise ValueError(f"steps={steps}: give a positive number of timed steps")
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
        if backend.startswith("cueq"):
            model = to_cueq(reference, device=device.type).to(device)
        else:
            model = build_model(config, data["e0s"], data["scale"], data["avg_num_neighbors"])
            model.load_state_dict(reference.state_dict())
            model = model.to(device)
        pred = model(probe, training=False, compute_force=True)
        outputs[backend] = (pred["energy"].detach().double(), pred["forces"].detach().double())
        del pred  # a live autograd graph would break CUDA-graph capture
        try:
            result["backends"][backend] = time_steps(
                model, batches, config, steps, device, use_graph=backend.endswith("+graph")
            )
        except Exception as err:  # noqa: BLE001 (record why a path failed, go on with the rest)
            result["backends"][backend] = {"error": f"{type(err).__name__}: {err}"}
        del model
    if "e3nn" in outputs and "cueq" in outputs:
        (e1, f1), (e2, f2) = outputs["e3nn"], outputs["cueq"]
        result["max_abs_energy_difference_eV"] = float((e1 - e2).abs().max())
        result["max_abs_force_difference_eV_per_A"] = float((f1 - f2).abs().max())
    timed = {k: v for k, v in result["backends"].items() if "median_ms_per_step" in v}
    if "e3nn" in timed:
        result["speedup_over_e3nn"] = {
            k: timed["e3nn"]["median_ms_per_step"] / v["median_ms_per_step"]
            for k, v in timed.items()
        }
    if "e3nn" in timed and "e3nn+graph" in timed:
        a, b = timed["e3nn"]["losses"], timed["e3nn+graph"]["losses"]
        result["graph_vs_eager_max_relative_loss_difference"] = max(
            abs(x - y) / abs(x) for x, y in zip(a, b)
        )
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    Path(out_file).write_text(json.dumps(result, indent=2) + "\n")
    return result
