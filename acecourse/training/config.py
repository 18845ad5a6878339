"""Training configurations ("profiles") for MACE on rMD17 ethanol.

A profile is a :class:`TrainConfig`; ``full`` is the recipe for the MACE paper's rMD17 results
(Batatia et al., 2022), each setting with its source (:data:`FULL_RECIPE`), and ``ci`` is the
same code path shrunk to run on a laptop CPU in seconds.
Any field can be overridden (``--set key=value`` on the command line).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Callable
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
    # learning-rate schedule (acecourse.training.schedules): "plateau" (the paper's
    # reduce-on-plateau with stage two from stage_two_start) or "cycle" (one warm-restart cycle:
    # linear warm-up to lr, cosine to cycle_min_lr at max_epochs, the last stage_two_fraction of
    # the epochs in stage two)
    schedule: str = "plateau"
    warmup_epochs: int = 5
    cycle_min_lr: float = 1e-5
    stage_two_fraction: float = 0.2
    # start from trained weights (a run's model.pt.gz) instead of a random initialisation
    init_weights: str | None = None
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


# Sources quoted below: [A.5.1] appendix A.5.1 of the MACE paper (Batatia et al. 2022,
# arXiv:2206.07697); [A.5] its appendix A.5; [README-2022] the first README of the authors' code,
# ACEsuit/mace commit cf507abb (2022-06-28); [mace-0.3.16] the installed mace-torch's
# arg_parser.py; [repro] the public reproduction kcheng0407/mace-rmd17-benchmark (MACE_rMD17.py,
# summary/results_summary.md, the logs of its first commit b41ff21).  Chapter
# 03_mace_architecture/04_training_mace gives the quotes and the reasoning.
FULL_RECIPE: dict[str, Any] = {
    # data: [A.5.1] "a total budget of 1,000 configurations, split into 950 for training and
    # 50 for validation"; which 50: the course's (split_seed 1)
    "n_train": 950,
    "n_valid": 50,
    "n_test": None,  # all 1,000 test frames of split 01
    # [A.5.1] "a per-atom shift via the average per-atom energy over all the training set"
    "e0s": "mean_per_atom",
    # model: [A.5.1] "two layers and 256 uncoupled feature channels and l_max=3"
    "num_interactions": 2,
    "max_ell": 3,
    # L = 3: the paper states no L for rMD17; [repro] its best ethanol runs, 3.3 and 2.7 meV/A,
    # used 256x0e+256x1o+256x2e+256x3o; its literal reading 256x0e (L = 0) gave 6.4 meV/A
    "hidden_irreps": "256x0e+256x1o+256x2e+256x3o",
    # nu = 3: the paper's four-body messages (its abstract: "using four-body messages")
    "correlation": 3,
    # [A.5.1] "8 Bessel basis functions and a polynomial envelope for the cutoff with p=5",
    # "a 5 A cutoff for all molecules"
    "num_bessel": 8,
    "num_polynomial_cutoff": 5,
    "r_max": 5.0,
    # [A.5.1] "an MLP of size [64, 64, 1024]"; the authors' code of June 2022 built three hidden
    # layers of 64 (`3 * [64]`, ACEsuit/mace 60c16d01), mace-torch's --radial_MLP default since
    "radial_mlp": [64, 64, 64],
    # [A.5.1] "a single-layer MLP with 16 hidden dimensions" (the second readout)
    "mlp_irreps": "16x0e",
    # optimisation, all [A.5.1]: "AMSGrad variant of Adam", "a learning rate of 0.01 and a batch
    # size of 5", "on-plateau scheduler ... patience of 50 and a decay factor of 0.8",
    # "exponential moving average with weight 0.99", "weight decay of 5e-7"
    "batch_size": 5,
    "lr": 0.01,
    "amsgrad": True,
    "scheduler_patience": 50,
    "lr_factor": 0.8,
    "ema_decay": 0.99,
    "weight_decay": 5e-7,
    # [A.5.1] "lambda_E and lambda_F are weights set to 1 and 1,000"
    "energy_weight": 1.0,
    "forces_weight": 1000.0,
    # [mace-0.3.16] --clip_grad default 10 (the paper states none)
    "clip_grad": 10.0,
    # [A.5] "float32 precision for rMD17"
    "dtype": "float32",
    # stage two: not in the paper.  [README-2022]: "for the last ca 20% of the epochs (from
    # --start_swa epochs) the loss is changed such that the energy weight is increased"; its
    # example: 1500 epochs, --start_swa=1200.  Epochs 1,000 with stage two from 800: [repro].
    "max_epochs": 1000,
    "stage_two_start": 800,
    # --swa_lr and --swa_energy_weight defaults since the first public code (60c16d01)
    "stage_two_lr": 1e-3,
    "stage_two_energy_weight": 1000.0,
    # the force weight kept at stage one's 1000: [repro] (its L = 0 runs: 6.9 meV/A with 100,
    # 6.4 with 1000); [README-2022]: only "the energy weight is increased"
    "stage_two_forces_weight": 1000.0,
    # execution (the course's): one CUDA GPU, e3nn kernels, the step as a CUDA graph
    "device": "cuda",
    "backend": "e3nn",
    "cuda_graph": True,
}
"""The ``full`` profile, every setting with its source (see the comments)."""

PROFILES: dict[str, dict[str, Any]] = {
    "full": FULL_RECIPE,
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
        Unknown profile, unknown setting, or a value the setting does not accept (a one-line
        message: ``setting lr="fast" must be a positive number``).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    values = dict(PROFILES[profile])
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise ValueError(f"unknown setting {key!r}; settings are: {', '.join(sorted(names))}")
        values[key] = value
    for key, value in values.items():
        values[key] = check_setting(key, value)
    return TrainConfig(**values)


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError
        if value < minimum or (maximum is not None and value > maximum):
            raise TypeError
        return int(value)

    return check


def _number(low: float = -math.inf, high: float = math.inf, open_low: bool = False) -> Callable:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError
        value = float(value)
        if not (
            math.isfinite(value) and (value > low if open_low else value >= low) and value < high
        ):
            raise TypeError
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _choice(*options: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in options:
            raise TypeError
        return value

    return check


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError
    return value


def _int_list(value: Any) -> list[int]:
    if not isinstance(value, list | tuple) or not value:
        raise TypeError
    return [_integer(1)(v) for v in value]


# What every setting accepts: (check, description for the error message).
_RULES: dict[str, tuple[Callable[[Any], Any], str]] = {
    "n_train": (_integer(1, 998), "an integer from 1 to 998 (n_train + n_valid <= 1000)"),
    "n_valid": (_integer(1, 999), "an integer from 1 to 999"),
    "n_test": (_optional(_integer(1, 1000)), "an integer from 1 to 1000, or null (all 1,000)"),
    "split_seed": (_integer(0), "a non-negative integer"),
    "data_dir": (_optional(_text), "a folder or null"),
    "e0s": (
        _choice("mean_per_atom", "least_squares", "zero"),
        "mean_per_atom, least_squares or zero",
    ),
    "r_max": (_number(0.0, open_low=True), "a positive number (Å)"),
    "num_bessel": (_integer(1), "a positive integer"),
    "num_polynomial_cutoff": (_integer(1), "a positive integer"),
    "max_ell": (_integer(0), "a non-negative integer"),
    "num_interactions": (_integer(1), "a positive integer"),
    "hidden_irreps": (_text, "an irreps string such as 8x0e+8x1o"),
    "mlp_irreps": (_text, "an irreps string such as 16x0e"),
    "radial_mlp": (_int_list, "a list of positive integers such as [64,64,64]"),
    "correlation": (_integer(1), "a positive integer"),
    "use_reduced_cg": (_flag, "true or false"),
    "seed": (_integer(0), "a non-negative integer"),
    "dtype": (_choice("float32", "float64"), "float32 or float64"),
    "batch_size": (_integer(1), "a positive integer"),
    "valid_batch_size": (_integer(1), "a positive integer"),
    "lr": (_number(0.0, open_low=True), "a positive number"),
    "weight_decay": (_number(0.0), "a non-negative number"),
    "amsgrad": (_flag, "true or false"),
    "energy_weight": (_number(0.0), "a non-negative number"),
    "forces_weight": (_number(0.0), "a non-negative number"),
    "scheduler_patience": (_integer(0), "a non-negative integer (epochs)"),
    "lr_factor": (_number(0.0, 1.0, open_low=True), "a number between 0 and 1"),
    "ema_decay": (_number(0.0, 1.0), "a number in [0, 1)"),
    "max_epochs": (_integer(1), "a positive integer"),
    "clip_grad": (_optional(_number(0.0, open_low=True)), "a positive number or null"),
    "stage_two_start": (_optional(_integer(0)), "a non-negative integer (epoch) or null"),
    "stage_two_lr": (_number(0.0, open_low=True), "a positive number"),
    "stage_two_energy_weight": (_number(0.0), "a non-negative number"),
    "stage_two_forces_weight": (_number(0.0), "a non-negative number"),
    "schedule": (_choice("plateau", "cycle"), "plateau or cycle"),
    "warmup_epochs": (_integer(0), "a non-negative integer (epochs)"),
    "cycle_min_lr": (_number(0.0), "a non-negative number"),
    "stage_two_fraction": (_number(0.0, 1.0), "a number in [0, 1)"),
    "init_weights": (_optional(_text), "a model.pt.gz file or null"),
    "device": (_choice("auto", "cpu", "cuda"), "auto, cpu or cuda"),
    "backend": (_choice("e3nn", "cueq"), "e3nn or cueq"),
    "cuda_graph": (_flag, "true or false"),
    "checkpoint_every": (_integer(1), "a positive integer (epochs)"),
    "max_wall_s": (_optional(_number(0.0, open_low=True)), "a positive number (s) or null"),
    "at_wall": (_choice("pause", "finish"), "pause or finish"),
    "progress": (_flag, "true or false"),
}
assert set(_RULES) == {f.name for f in dataclasses.fields(TrainConfig)}, "a setting without a rule"


def check_setting(name: str, value: Any) -> Any:
    """Check one setting's value and return it normalised (ints as int, numbers as float).

    Raises
    ------
    ValueError
        One line naming the setting, the value and what it accepts.
    """
    check, description = _RULES[name]
    try:
        return check(value)
    except (TypeError, ValueError):
        shown = json.dumps(value) if _jsonable(value) else repr(value)
        raise ValueError(f"setting {name}={shown} must be {description}") from None


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def held_out_test_indices(config: TrainConfig) -> np.ndarray:
    """The test frames of a run: all 1,000, or ``n_test`` spread evenly over them."""
    n_test = 1000 if config.n_test is None else config.n_test
    return np.unique(np.linspace(0, 999, n_test).round().astype(int))
