"""A small trainer for :class:`~acecourse.nn.interaction.EquivariantPotential` on energies and forces.

The loss on a batch of ``B`` molecules with ``N_b`` atoms each is MACE's weighted loss

.. math::

    \\mathcal L = \\lambda_E \\frac{1}{B} \\sum_b \\Big(\\frac{E_b - \\hat E_b}{N_b}\\Big)^2
                + \\lambda_F \\frac{1}{3 \\sum_b N_b} \\sum_{i, \\alpha} (F_{i\\alpha} - \\hat F_{i\\alpha})^2

(eV², per-atom energies; by default ``lambda_E = 1``, ``lambda_F = 100``, mace-torch's
defaults, which favour forces), with the forces ``F = -dE/dr`` obtained by automatic differentiation
of the model's energy.  The model's energy is ``E = sum_i (scale * e_i + shift)``, with ``shift``
the mean energy per atom and ``scale`` the root-mean-square force component of the training set
(NequIP's choice), so the network works with numbers of order one.

Optimiser: Adam with a cosine learning-rate decay to ``lr / 20`` over the epochs.  Test errors
are measured on a fixed subset of the rMD17 test split (the first ``n_test`` frames of a seeded
permutation, so smaller runs use a subset of the larger runs' frames).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from ase import Atoms
from tqdm.auto import tqdm

from acecourse.metrics import error_metrics
from acecourse.nn.graph import batch_from_atoms
from acecourse.nn.interaction import EquivariantPotential, count_parameters

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainingSettings:
    """What a training run does (sizes, optimiser, loss weights)."""

    n_train: int = 200
    n_test: int = 200
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 5e-3
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    seed: int = 0
    dtype: str = "float32"
    eval_every: int = 1


def subset_indices(n_frames: int, n: int, seed: int) -> np.ndarray:
    """The first ``n`` entries of a seeded permutation of ``range(n_frames)`` (nested in ``n``)."""
    if not 0 < n <= n_frames:
        raise ValueError(f"ask for between 1 and {n_frames} frames, got {n}")
    return np.random.default_rng(seed).permutation(n_frames)[:n]


def energy_shift_and_scale(frames: list[Atoms]) -> tuple[float, float]:
    """Mean energy per atom (eV) and RMS force component (eV/Å) of the training frames."""
    per_atom = [a.info["REF_energy"] / len(a) for a in frames]
    forces = np.concatenate([a.arrays["REF_forces"].ravel() for a in frames])
    return float(np.mean(per_atom)), float(np.sqrt(np.mean(forces**2)))


def evaluate(
    model: EquivariantPotential, frames: list[Atoms], batch_size: int = 50
) -> dict[str, float]:
    """:func:`~acecourse.metrics.error_metrics` of ``model`` on ``frames``: energy MAE, RMSE and
    mean signed error (meV per molecule), force MAE and RMSE (meV/Å).

    The signed error is prediction minus reference, averaged over the frames: a constant offset
    of the predicted energies shows up in it with its sign, random errors average out.
    """
    dtype = next(model.parameters()).dtype
    pred = {"energy_pred": [], "energy_ref": [], "forces_pred": [], "forces_ref": []}
    for start in range(0, len(frames), batch_size):
        batch = batch_from_atoms(frames[start : start + batch_size], model.species, dtype=dtype)
        energies, forces = model.energy_and_forces(batch)
        pred["energy_pred"].append(energies.detach().double().numpy())
        pred["energy_ref"].append(batch.energies.double().numpy())
        pred["forces_pred"].append(forces.detach().double().numpy())
        pred["forces_ref"].append(batch.forces.double().numpy())
    return error_metrics({key: np.concatenate(values) for key, values in pred.items()})


def train_potential(
    model_kwargs: dict,
    train_frames: list[Atoms],
    test_frames: list[Atoms],
    settings: TrainingSettings,
    progress: bool = True,
    label: str = "",
) -> dict:
    """Build an :class:`EquivariantPotential`, train it, and return its learning curve.

    Parameters
    ----------
    model_kwargs : keyword arguments of :class:`EquivariantPotential` (``shift`` and ``scale``
        are set from ``train_frames``)
    train_frames, test_frames : ASE ``Atoms`` with ``REF_energy`` (eV) and ``REF_forces`` (eV/Å)
    settings : sizes and optimiser (``settings.n_train``/``n_test`` are recorded, not applied)
    progress : show a tqdm bar over the epochs

    Returns
    -------
    dict
        JSON-serialisable: ``model_kwargs``, ``settings``, ``n_parameters``, ``initial`` (test
        metrics of the untrained model, see :func:`evaluate`), ``history`` (lists per evaluated
        epoch: ``epoch``, ``train_loss``, ``train_forces_mae_meV_per_A``,
        ``test_energy_mae_meV``, ``test_forces_mae_meV_per_A``), ``final`` (test metrics after
        the last epoch), ``seconds`` (wall time, training and evaluation), and ``model`` (the
        trained module, not serialisable: drop it before saving).
    """
    dtype = DTYPES[settings.dtype]
    torch.manual_seed(settings.seed)
    shift, scale = energy_shift_and_scale(train_frames)
    model = EquivariantPotential(**model_kwargs, shift=shift, scale=scale).to(dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    n_steps = settings.epochs * math.ceil(len(train_frames) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=n_steps, eta_min=settings.learning_rate / 20
    )
    generator = np.random.default_rng(settings.seed)
    history: dict[str, list[float]] = {
        "epoch": [],
        "train_loss": [],
        "train_forces_mae_meV_per_A": [],
        "test_energy_mae_meV": [],
        "test_forces_mae_meV_per_A": [],
    }
    start = time.perf_counter()
    initial = evaluate(model, test_frames)
    bar = tqdm(
        range(1, settings.epochs + 1),
        desc=label or "training",
        disable=not progress,
        mininterval=5.0,
    )
    for epoch in bar:
        order = generator.permutation(len(train_frames))
        losses, force_abs, n_components = [], 0.0, 0
        for first in range(0, len(order), settings.batch_size):
            chosen = [train_frames[k] for k in order[first : first + settings.batch_size]]
            batch = batch_from_atoms(chosen, model.species, dtype=dtype)
            energies, forces = model.energy_and_forces(batch, training=True)
            per_atom = (energies - batch.energies) / batch.atoms_per_graph.to(dtype)
            loss = (
                settings.energy_weight * per_atom.pow(2).mean()
                + settings.forces_weight * (forces - batch.forces).pow(2).mean()
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            force_abs += float((forces.detach() - batch.forces).abs().sum())
            n_components += forces.numel()
        if epoch % settings.eval_every == 0 or epoch == settings.epochs:
            metrics = evaluate(model, test_frames)
            history["epoch"].append(epoch)
            history["train_loss"].append(float(np.mean(losses)))
            history["train_forces_mae_meV_per_A"].append(1000 * force_abs / n_components)
            history["test_energy_mae_meV"].append(metrics["energy_mae_meV"])
            history["test_forces_mae_meV_per_A"].append(metrics["forces_mae_meV_per_A"])
            bar.set_postfix(test_F_MAE=f"{metrics['forces_mae_meV_per_A']:.1f} meV/Å")
    final = evaluate(model, test_frames)
    return {
        "label": label,
        "model_kwargs": dict(model_kwargs),
        "settings": asdict(settings),
        "n_parameters": count_parameters(model),
        "initial": initial,
        "history": history,
        "final": final,
        "seconds": time.perf_counter() - start,
        "model": model,
    }


#: Channels per degree giving about 5.3k parameters for each L (2 layers, 8 Bessel functions).
MATCHED_MULTIPLICITIES = {0: 21, 1: 12, 2: 8}


def load_ethanol_subsets(settings: TrainingSettings) -> tuple[list[Atoms], list[Atoms]]:
    """Training frames (seeded subset of the rMD17 train split) and the fixed test subset."""
    from acecourse.data import load_rmd17_ethanol

    train = load_rmd17_ethanol("train", indices=subset_indices(1000, settings.n_train, seed=0))
    test = load_rmd17_ethanol("test", indices=subset_indices(1000, settings.n_test, seed=1))
    return train, test


def compare_l_max(
    settings: TrainingSettings,
    multiplicities: dict[int, int] | None = None,
    progress: bool = True,
    **model_kwargs,
) -> list[dict]:
    """Train one potential per hidden degree ``L`` (same data, seed and settings) on rMD17 ethanol.

    ``multiplicities`` maps ``L`` to channels (default :data:`MATCHED_MULTIPLICITIES`); extra
    keyword arguments go to :class:`EquivariantPotential`.  Returns the results of
    :func:`train_potential` in the order of ``multiplicities``.
    """
    multiplicities = multiplicities or MATCHED_MULTIPLICITIES
    train, test = load_ethanol_subsets(settings)
    return [
        train_potential(
            {"l_max": l_max, "multiplicities": mul, **model_kwargs},
            train,
            test,
            settings,
            progress=progress,
            label=f"L={l_max}",
        )
        for l_max, mul in multiplicities.items()
    ]
