"""Test-set evaluation of a trained model in float64.

Training runs in float32, as in the MACE paper, but float32 cannot resolve the quantity the
benchmark asks for: the total energy of ethanol is about -4209 eV, where neighbouring float32
numbers are 2**-11 eV = 0.49 meV apart, so rounding the reference and the prediction alone
moves an energy error by up to ~0.5 meV, more than the paper's 0.4 meV MAE.
:func:`evaluate_float64` rebuilds a run's exported weights (``model.pt.gz``) in float64, reads the
test frames in float64 and writes ``test_metrics_float64.json``; the training command calls it
at the end of every float32 run, and ``python -m acecourse.training evaluate RUN`` does it for an
existing run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from acecourse.data.rmd17 import load_rmd17_ethanol
from acecourse.dtypes import default_dtype
from acecourse.metrics import error_metrics
from acecourse.training.config import config_from_dict, held_out_test_indices
from acecourse.training.data import make_batches, to_atomic_data
from acecourse.training.trainer import (
    TrainingError,
    device_name,
    git_commit,
    load_trained_model,
    predict,
    write_json,
)

FLOAT64_METRICS = "test_metrics_float64.json"


def evaluate_float64(
    run_dir: str | os.PathLike,
    device: str = "cpu",
    data_dir: str | os.PathLike | None = None,
    batch_size: int | None = None,
    command: str | None = None,
) -> dict:
    """Evaluate ``run_dir/model.pt.gz`` on the run's test frames in float64; write and return it."""
    if batch_size is not None and batch_size < 1:
        raise TrainingError(f"batch_size={batch_size}: give a positive batch size")
    run_dir = Path(run_dir)
    model_path, config_path = run_dir / "model.pt.gz", run_dir / "config.json"
    for path in (model_path, config_path):
        if not path.is_file():
            raise TrainingError(f"{path}: not found (has the run finished?)")
    config = config_from_dict(json.loads(config_path.read_text()))
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device cuda requested but no GPU is visible; use --device cpu")
    with default_dtype(torch.float64):  # the reference labels are read in float64 too
        model = load_trained_model(model_path, dtype="float64").to(device)
        frames = load_rmd17_ethanol("test", data_dir, indices=held_out_test_indices(config))
        batches = make_batches(
            to_atomic_data(frames, config.r_max), torch.device(device), torch.float64
        )
        pred = predict(model, batches, batch_size or config.valid_batch_size)
    record = {
        "metrics": error_metrics(pred, frames[0].numbers),
        "weights": f"{model_path.name}: the run's float32 weights, evaluated in float64",
        "device": device_name(torch.device(device)),
        "git_commit": git_commit(),
        "command": command or f"evaluate_float64({str(run_dir)!r}, device={device!r})",
    }
    write_json(record, run_dir / FLOAT64_METRICS)
    return record
