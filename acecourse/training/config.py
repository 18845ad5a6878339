"""Training configurations ("profiles") for MACE on rMD17 ethanol.

A profile is a :class:`TrainConfig`; ``full`` follows the MACE paper's appendix A.5.1
(Batatia et al., 2022) and ``ci`` is the same code path shrunk to run on a laptop CPU in seconds.
Any field can be overridden (``--set key=value`` on the command line).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainConfig:
    """Every setting of a training run.  Units: energies eV, lengths Å, times s."""

    # data
    n_train: int = 950
    n_valid: int = 50
    n_test: int | None = None  # None: all 1,000 test frames
    split_seed: int = 1
    data_dir: str | None = None
    e0s: str = "mean_per_atom"  # or "least_squares" (mace's --E0s=average) or "zero"
    # model (mace.modules.ScaleShiftMACE)
    r_max: float = 5.0
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    max_ell: int = 3
    num_interactions: int = 2
    hidden_irreps: str = "256x0e+256x1o+256x2e"
    mlp_irreps: str = "16x0e"
    radial_mlp: list[int] = field(default_factory=lambda: [64, 64, 64])
    correlation: int = 3
    use_reduced_cg: bool = False
    # optimisation
    seed: int = 123
    dtype: str = "float32"
    batch_size: int = 5
    valid_batch_size: int = 50
    lr: float = 0.01
    weight_decay: float = 5e-7
    amsgrad: bool = True
    energy_weight: float = 1.0
    forces_weight: float = 1000.0
    scheduler_patience: int = 50
    lr_factor: float = 0.8
    ema_decay: float = 0.99
    max_epochs: int = 1000
    clip_grad: float | None = 10.0
    # stage two (mace's "swa"/"stage_two"): from this epoch on, new loss weights and lr
    stage_two_start: int | None = 800
    stage_two_lr: float = 1e-3
    stage_two_energy_weight: float = 1000.0
    stage_two_forces_weight: float = 100.0
    # execution
    device: str = "auto"  # "auto", "cpu" or "cuda"
    backend: str = "e3nn"  # "e3nn" or "cueq" (mace-torch's cuEquivariance path; GPU)
    cuda_graph: bool = False  # record the training step as a CUDA graph (GPU, static batches)
    checkpoint_every: int = 5  # epochs
    max_wall_s: float | None = None  # stop cleanly (with a checkpoint) after this many seconds
    at_wall: str = "pause"  # at max_wall_s: "pause" (resumable) or "finish" (evaluate and end)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


PROFILES: dict[str, dict[str, Any]] = {
    # Paper settings (appendix A.5.1); epochs and stage two chosen for the device budget, see
    # the chapter 03_mace_architecture/04_training_mace for why.
    "full": {"device": "cuda", "backend": "e3nn", "cuda_graph": True},
    # The CI profile: a real, shrunk run on the CPU.
    "ci": {
        "n_train": 40,
        "n_valid": 10,
        "n_test": 40,
        "hidden_irreps": "8x0e+8x1o",
        "max_ell": 2,
        "correlation": 2,
        "radial_mlp": [16, 16],
        "batch_size": 5,
        "valid_batch_size": 10,
        "max_epochs": 12,
        "stage_two_start": 9,
        "scheduler_patience": 5,
        "device": "cpu",
        "backend": "e3nn",
        "checkpoint_every": 1,
        "dtype": "float64",
    },
}


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: JSON where possible (numbers, lists, null, true), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def make_config(profile: str = "ci", overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from a profile name and overrides.

    Raises
    ------
    ValueError
        Unknown profile or unknown field name.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    values = dict(PROFILES[profile])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise ValueError(f"unknown setting {key!r}; settings are: {', '.join(sorted(names))}")
        values[key] = value
    config = TrainConfig(**values)
    if config.backend not in ("e3nn", "cueq"):
        raise ValueError(f"backend must be 'e3nn' or 'cueq', got {config.backend!r}")
    if config.e0s not in ("mean_per_atom", "least_squares", "zero"):
        raise ValueError(f"e0s must be mean_per_atom, least_squares or zero, got {config.e0s!r}")
    if config.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {config.dtype!r}")
    return config


def held_out_test_indices(config: TrainConfig) -> np.ndarray:
    """The test frames of a run: all 1,000, or ``n_test`` spread evenly over them."""
    n_test = 1000 if config.n_test is None else config.n_test
    return np.unique(np.linspace(0, 999, n_test).round().astype(int))
