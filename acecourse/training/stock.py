"""mace-torch's own training loop (``mace_run_train``) on the same model and data, for comparison.

:func:`stock_command` is the command line that trains a config's model with the same recipe
(the chapter prints it); :func:`epoch_times_from_log` reads the epoch times from its log (the
step-time benchmark ``scripts/benchmark.py`` runs it for a few epochs as its ``stock`` backend).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import numpy as np
from ase.io import write

from acecourse.training.config import TrainConfig

# the time stamps of the log lines that start training and end an epoch
_MARK = re.compile(
    r"^\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) INFO: (?:Started training|Epoch \d+:)",
    re.MULTILINE,
)


def stock_command(
    config: TrainConfig,
    train_file: str,
    valid_file: str,
    e0s: dict[int, float] | None = None,
    test_file: str | None = None,
    epochs: int | None = None,
    stage_two: bool = True,
) -> list[str]:
    """``mace_run_train`` arguments for ``config``'s model and recipe.

    ``e0s``: the per-element reference energies (by default ``--E0s=average``, which on one
    composition gives another, equally valid split; see the chapter).  ``epochs`` replaces
    ``config.max_epochs``; ``stage_two`` adds stage two from ``config.stage_two_start``.
    """
    e0_arg = (
        "average" if e0s is None else "{" + ", ".join(f"{z}: {e!r}" for z, e in e0s.items()) + "}"
    )
    args = [
        "mace_run_train",
        "--name=mace_ethanol",
        f"--train_file={train_file}",
        f"--valid_file={valid_file}",
        "--energy_key=REF_energy",
        "--forces_key=REF_forces",
        f"--E0s={e0_arg}",
        "--model=MACE",
        f"--hidden_irreps={config.hidden_irreps}",
        f"--max_ell={config.max_ell}",
        f"--correlation={config.correlation}",
        f"--num_interactions={config.num_interactions}",
        f"--r_max={config.r_max}",
        f"--num_radial_basis={config.num_bessel}",
        f"--num_cutoff_basis={config.num_polynomial_cutoff}",
        f"--radial_MLP=[{','.join(map(str, config.radial_mlp))}]",
        f"--MLP_irreps={config.mlp_irreps}",
        "--scaling=rms_forces_scaling",
        f"--batch_size={config.batch_size}",
        f"--valid_batch_size={config.valid_batch_size}",
        f"--max_num_epochs={epochs or config.max_epochs}",
        f"--lr={config.lr}",
        f"--weight_decay={config.weight_decay}",
        f"--energy_weight={config.energy_weight}",
        f"--forces_weight={config.forces_weight}",
        f"--scheduler_patience={config.scheduler_patience}",
        f"--lr_factor={config.lr_factor}",
        "--ema",
        f"--ema_decay={config.ema_decay}",
        f"--seed={config.seed}",
        f"--default_dtype={config.dtype}",
        f"--device={'cpu' if config.device == 'cpu' else 'cuda'}",
        "--eval_interval=1",
    ]
    if config.amsgrad:
        args.append("--amsgrad")
    if config.clip_grad is not None:
        args.append(f"--clip_grad={config.clip_grad}")
    if test_file:
        args.append(f"--test_file={test_file}")
    if stage_two and config.stage_two_start is not None:
        args += [
            "--stage_two",
            f"--start_stage_two={config.stage_two_start}",
            f"--stage_two_lr={config.stage_two_lr}",
            f"--stage_two_energy_weight={config.stage_two_energy_weight}",
            f"--stage_two_forces_weight={config.stage_two_forces_weight}",
        ]
    return args


def write_split_xyz(config: TrainConfig, out_dir: str | os.PathLike) -> dict[str, str]:
    """The course's training, validation and test frames of ``config`` as extended XYZ files
    (``train.xyz``, ``valid.xyz``, ``test.xyz`` in ``out_dir``, with ``REF_energy`` and
    ``REF_forces``), the input of :func:`stock_command`.  Returns their paths."""
    from acecourse.data.rmd17 import load_rmd17_ethanol
    from acecourse.training.trainer import split_indices

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, indices in zip(("train", "valid", "test"), split_indices(config)):
        paths[name] = str(out / f"{name}.xyz")
        source = "test" if name == "test" else "train"  # validation frames come from train
        frames = load_rmd17_ethanol(source, config.data_dir, indices=indices)
        write(paths[name], frames, format="extxyz")
    return paths


def epoch_times_from_log(text: str) -> list[float]:
    """Seconds from "Started training" to the first "Epoch 0:" line and between epoch lines.

    mace-torch logs ``Epoch N: head: ..., loss=...`` after each epoch's validation, with a
    millisecond time stamp (``%Y-%m-%d %H:%M:%S.%f``).
    """
    stamps = [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        for stamp in _MARK.findall(text)
    ]
    return list(np.diff(stamps))
