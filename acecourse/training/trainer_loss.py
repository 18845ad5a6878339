"""The loss of mace-torch's default training, in one function."""

from __future__ import annotations

import torch


def loss_function(
    pred: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    energy_weight: float | torch.Tensor,
    forces_weight: float | torch.Tensor,
) -> torch.Tensor:
    """mace-torch's ``WeightedEnergyForcesLoss`` with unit configuration weights.

    ``λE · mean_graphs((ΔE / N_atoms)²) + λF · mean_components(ΔF²)``, energies in eV, forces
    in eV/Å.
    """
    n_atoms = (batch["ptr"][1:] - batch["ptr"][:-1]).to(pred["energy"].dtype)
    energy_term = torch.mean(torch.square((batch["energy"] - pred["energy"]) / n_atoms))
    forces_term = torch.mean(torch.square(batch["forces"] - pred["forces"]))
    return energy_weight * energy_term + forces_weight * forces_term
