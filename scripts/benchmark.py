"""Time training steps of the same MACE model along every path, side by side.

Backends (``BACKENDS``):

- ``e3nn``: mace-torch's plain e3nn model, eager steps (the course's loop);
- ``e3nn+graph``: the same step recorded once as a CUDA graph and replayed
  (:class:`~acecourse.training.steps.StepRunner`);
- ``e3nn+compile`` and ``e3nn+compile+graph``: the model prepared as mace-torch prepares it for
  ``torch.compile`` (:func:`mace.tools.compile.prepare`) and compiled, without and with the graph;
- ``cueq`` and ``cueq+graph``: mace-torch's cuEquivariance path (the model converted from the
  e3nn one by mace-torch's converter);
- ``stock``: mace-torch's own loop, ``mace_run_train``, on the same frames and model
  (:func:`acecourse.training.stock.stock_command`), timed per epoch from its log.

Every course backend starts from the same weights, sees the same batches, and runs the full
training step (forward, forces by autograd, loss, backward, AMSGrad step, EMA); its predictions
for one probe batch are kept so that the backends can be checked against each other.

A failing backend never takes the others down: its error is recorded, and with ``isolate=True``
(the command line's default) each backend runs in a process group of its own, killed whole at a
time limit, so that a crash, a hang or a poisoned CUDA context stays there.  The results file is
rewritten after every backend.

Step times of every backend and of stock ``mace_run_train``, side by side (from the repository
root)::

    python scripts/benchmark.py --profile full --backends e3nn,e3nn+graph,stock --out bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase.io import write

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's acecourse
from acecourse.data.rmd17 import RMD17DataError
from acecourse.dtypes import default_dtype
from acecourse.training.config import (
    PROFILES,
    TrainConfig,
    config_from_dict,
    make_config,
    parse_settings,
)
from acecourse.training.data import Z_TABLE, make_batches
from acecourse.training.model import build_model, to_cueq
from acecourse.training.steps import make_step_runner
from acecourse.training.stock import epoch_times_from_log, stock_command
from acecourse.training.trainer import (
    TrainingError,
    device_name,
    prepare_data,
    resolve_device,
    software_versions,
)

BACKENDS = (
    "e3nn",
    "e3nn+graph",
    "e3nn+compile",
    "e3nn+compile+graph",
    "cueq",
    "cueq+graph",
    "stock",
)


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
    runner = make_step_runner(model, config, use_graph)
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


def time_stock_epochs(
    config: TrainConfig, data: dict[str, Any], epochs: int = 3, timeout_s: float = 600.0
) -> dict[str, Any]:
    """Run ``mace_run_train`` for ``epochs`` epochs on ``data``'s frames; its epoch times.

    ``data`` is :func:`~acecourse.training.trainer.prepare_data`'s (its ``frames`` and ``e0s``).
    Each epoch's time includes mace-torch's validation of the validation frames (done every
    epoch here, as the course's loop does).  The first epoch also pays for warm-up, so
    ``s_per_epoch`` is the median of the others.
    """
    e0s = {int(z): float(e) for z, e in zip(Z_TABLE.zs, data["e0s"])}
    with tempfile.TemporaryDirectory(prefix="stock_") as work:
        work = Path(work)
        train, valid = (str(work / f"{name}.xyz") for name in ("train", "valid"))
        write(train, data["frames"]["train"], format="extxyz")
        write(valid, data["frames"]["valid"], format="extxyz")
        args = stock_command(config, train, valid, e0s, epochs=epochs, stage_two=False)
        argv = [sys.executable, "-m", "mace.cli.run_train", *args[1:], f"--work_dir={work}"]
        t0 = time.perf_counter()
        with open(work / "output.log", "w") as log:  # a killed run's epochs are kept
            try:
                done = subprocess.run(
                    argv, cwd=work, stdout=log, stderr=log, timeout=timeout_s, check=False
                )
                rc = done.returncode
            except subprocess.TimeoutExpired:
                rc = None
        wall = time.perf_counter() - t0
        output = (work / "output.log").read_text()
    times = epoch_times_from_log(output)
    result: dict[str, Any] = {
        "command": shlex.join(args),
        "returncode": rc,
        "wall_s": wall,
        "epoch_times_s": times,
        "steps_per_epoch": -(-config.n_train // config.batch_size),
    }
    if rc != 0 or len(times) < 2:
        tail = "\n".join(output.strip().splitlines()[-5:])
        reason = "timed out" if rc is None else f"exit code {rc}"
        result["error"] = f"mace_run_train {reason} after {len(times)} epochs: {tail}"
        return result
    per_epoch = float(np.median(times[1:]))
    result["s_per_epoch"] = per_epoch
    result["median_ms_per_step"] = 1e3 * per_epoch / result["steps_per_epoch"]
    return result


def _model_for(backend: str, config: TrainConfig, data: dict, device: torch.device):
    """The model of ``backend``, with the weights of ``build_model(config, ...)``."""
    args = (config, data["e0s"], data["scale"], data["avg_num_neighbors"])
    reference = build_model(*args)
    if backend.startswith("cueq"):
        return to_cueq(reference, device=device.type).to(device)
    if "+compile" in backend:
        from mace.tools.compile import prepare

        model = prepare(build_model)(*args)
        model.load_state_dict(reference.state_dict())
        return torch.compile(model.to(device))
    return reference.to(device)


def run_backend(
    config: TrainConfig,
    backend: str,
    steps: int,
    data: dict | None = None,
    stock_epochs: int = 3,
    stock_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Time one backend; any exception becomes ``{"error": ...}`` (the others go on).

    ``data`` is :func:`~acecourse.training.trainer.prepare_data`'s, loaded here when not given:
    after the check that the backend can run on this machine, so that one that cannot fails fast.
    """
    t0 = time.perf_counter()
    try:
        if backend == "stock":
            data = data or prepare_data(config)
            return time_stock_epochs(config, data, epochs=stock_epochs, timeout_s=stock_timeout_s)
        device = resolve_device(config)
        if device.type != "cuda" and (backend.startswith("cueq") or backend.endswith("+graph")):
            raise TrainingError(f"backend {backend} needs device cuda")
        data = data or prepare_data(config)
        batches = make_batches(data["train"], device, getattr(torch, config.dtype))
        model = _model_for(backend, config, data, device)
        probe_batch = batches.batch(torch.arange(config.batch_size))
        pred = model(probe_batch, training=False, compute_force=True)
        probe = {k: pred[k].detach().double().cpu().tolist() for k in ("energy", "forces")}
        del pred  # a live autograd graph would break CUDA-graph capture
        timing = time_steps(model, batches, config, steps, device, backend.endswith("+graph"))
        return {**timing, "probe": probe, "wall_s": time.perf_counter() - t0}
    except Exception as err:  # noqa: BLE001 (record why a path failed, go on with the rest)
        return {"error": f"{type(err).__name__}: {err}", "wall_s": time.perf_counter() - t0}


def _run_isolated(
    config: TrainConfig, backend: str, steps: int, stock_epochs: int, timeout_s: float
) -> dict[str, Any]:
    """:func:`run_backend` in a process group of its own, killed whole after ``timeout_s``
    (``mace_run_train`` of the ``stock`` backend included, which is given 20 s less so that it
    ends first and its epoch times are kept)."""
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        job_file, out_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job = {
            "config": config.to_dict(),
            "backend": backend,
            "steps": steps,
            "stock_epochs": stock_epochs,
            "stock_timeout_s": max(1.0, timeout_s - 20),
        }
        job_file.write_text(json.dumps(job))
        script = str(Path(__file__).resolve())  # this file, run as an isolated backend
        argv = [sys.executable, script, "--job", str(job_file), "--out", str(out_file)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the backend and anything it started
            proc.communicate()
            return {"error": f"no result within {timeout_s:g} s (killed)", "wall_s": timeout_s}
        if out_file.is_file():
            return json.loads(out_file.read_text())
        tail = " | ".join(output.strip().splitlines()[-3:])
        return {
            "error": f"process ended with exit code {proc.returncode} and no result: {tail}",
            "wall_s": time.perf_counter() - t0,
        }


def benchmark(
    config: TrainConfig,
    backends: list[str],
    steps: int,
    out_file: str | Path,
    isolate: bool = False,
    timeout_s: float = 900.0,
    stock_epochs: int = 3,
    verbose: bool = False,
) -> dict[str, Any]:
    """Time ``steps`` training steps per backend; write and return a JSON-able dict.

    ``isolate``: each backend in its own process with ``timeout_s`` (a crash or hang is
    recorded as that backend's error).  ``stock_epochs``: epochs of ``mace_run_train`` for the
    ``stock`` backend.  ``verbose``: print each backend's line as soon as it is timed.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(
            f"unknown backend {', '.join(map(repr, unknown))}; choose from {', '.join(BACKENDS)}"
        )
    if steps < 1:
        raise ValueError(f"steps={steps}: give a positive number of timed steps")
    with default_dtype(getattr(torch, config.dtype)):  # restored for the caller
        device = resolve_device(dataclasses.replace(config, backend="e3nn"))  # no GPU: say so now
        result: dict[str, Any] = {
            "device": device_name(device),
            "software": software_versions(),
            "config": config.to_dict(),
            "steps": steps,
            "isolated": isolate,
            "backends": {},
        }
        out_file = Path(out_file)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        data = None if isolate else prepare_data(config)
        for backend in backends:
            if isolate:
                entry = _run_isolated(config, backend, steps, stock_epochs, timeout_s)
            else:
                entry = run_backend(config, backend, steps, data, stock_epochs)
            result["backends"][backend] = entry
            if verbose:
                print(summary_line(backend, entry), flush=True)
            _compare(result)
            out_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


DERIVED = (  # the keys _compare adds, in the order of the JSON
    "speedup_over_e3nn",
    "max_abs_difference_vs_e3nn",
    "max_abs_force_difference_eV_per_A",
    "graph_vs_eager_max_relative_loss_difference",
)


def _compare(result: dict[str, Any]) -> None:
    """Add the speed-ups over eager e3nn and the agreement of the backends' predictions (anew
    after each backend, so the keys keep one order)."""
    for key in DERIVED:
        result.pop(key, None)
    entries = result["backends"]
    timed = {k: v for k, v in entries.items() if "median_ms_per_step" in v}
    if "e3nn" not in timed:
        return
    base = timed["e3nn"]["median_ms_per_step"]
    result["speedup_over_e3nn"] = {k: base / v["median_ms_per_step"] for k, v in timed.items()}
    reference = timed["e3nn"]["probe"]
    result["max_abs_difference_vs_e3nn"] = differences = {
        name: {
            unit: float((torch.tensor(reference[k]) - torch.tensor(entry["probe"][k])).abs().max())
            for k, unit in (("energy", "energy_eV"), ("forces", "forces_eV_per_A"))
        }
        for name, entry in entries.items()
        if name != "e3nn" and "probe" in entry
    }
    if "cueq" in differences:  # the key older benchmark files have
        result["max_abs_force_difference_eV_per_A"] = differences["cueq"]["forces_eV_per_A"]
    if "e3nn+graph" in timed:
        a, b = timed["e3nn"]["losses"], timed["e3nn+graph"]["losses"]
        result["graph_vs_eager_max_relative_loss_difference"] = max(
            abs(x - y) / abs(x) for x, y in zip(a, b)
        )


def summary_line(backend: str, entry: dict[str, Any]) -> str:
    """One line of the side-by-side table: ms per step and s per epoch, or the error."""
    if "median_ms_per_step" not in entry:
        return f"{backend:20s} failed: {entry.get('error', 'no timing')}"[:300]
    per_epoch = entry.get("s_per_epoch", entry.get("epoch_s_from_median"))
    note = "incl. validation, from the log" if backend == "stock" else ""
    if entry.get("cuda_graph_error"):
        note = f"graph capture failed: {entry['cuda_graph_error']}"[:120]
    return (
        f"{backend:20s} {entry['median_ms_per_step']:9.2f} ms/step {per_epoch:8.2f} s/epoch "
        f"({entry['steps_per_epoch']} steps) {note}"
    )


def summary_table(result: dict[str, Any]) -> str:
    """All backends of a benchmark result, one line each."""
    lines = [f"{result['device']}, {result['steps']} timed steps per course backend"]
    lines += [summary_line(name, entry) for name, entry in result["backends"].items()]
    return "\n".join(lines)


def _run_job(job_file: str, out_file: str) -> int:
    """Entry of an isolated backend: JOB_JSON (the config and run_backend's arguments) OUT_JSON."""
    job = json.loads(Path(job_file).read_text())
    config = config_from_dict(job.pop("config"))
    torch.set_default_dtype(getattr(torch, config.dtype))
    Path(out_file).write_text(json.dumps(run_backend(config, **job)) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/benchmark.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--profile", default="full", choices=sorted(PROFILES))
    parser.add_argument("--out", required=True, help="JSON file for the timings")
    parser.add_argument("--backends", default="e3nn,e3nn+graph,stock")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--stock-epochs", type=int, default=3, help="epochs of mace_run_train")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per backend")
    parser.add_argument(
        "--no-isolate", action="store_true", help="all backends in this process (no time limit)"
    )
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # an isolated backend's JOB_JSON
    args = parser.parse_args(argv)
    if args.job:
        return _run_job(args.job, args.out)
    try:
        config = make_config(args.profile, parse_settings(args.set))
        if args.stock_epochs < 2:
            raise ValueError(f"--stock-epochs {args.stock_epochs}: give at least 2 epochs")
        result = benchmark(
            config,
            args.backends.split(","),
            args.steps,
            args.out,
            isolate=not args.no_isolate,
            timeout_s=args.timeout,
            stock_epochs=args.stock_epochs,
            verbose=True,
        )
    except (ValueError, RMD17DataError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
