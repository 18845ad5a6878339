"""The trainer reduces the test force error on a few ethanol frames (a quick real run)."""

import numpy as np
import pytest
import torch

from acecourse.data.rmd17 import resolve_data_dir
from acecourse.nn.graph import batch_from_atoms
from acecourse.nn.interaction import EquivariantPotential
from acecourse.nn.trainer import (
    TrainingSettings,
    energy_shift_and_scale,
    evaluate,
    load_ethanol_subsets,
    subset_indices,
    train_potential,
)


def test_evaluate_reports_a_constant_offset_as_the_mean_signed_error():
    """Reference labels = the model's own predictions shifted by +0.5 eV: MAE = -mean = 500 meV."""
    from ase.build import molecule

    torch.manual_seed(0)
    model = EquivariantPotential(l_max=1, multiplicities=4).double()
    frames = []
    for k in range(3):
        atoms = molecule("CH3CH2OH")
        atoms.positions += 0.05 * k * np.sin(np.arange(27.0)).reshape(9, 3)
        frames.append(atoms)
    predicted, forces = model.energy_and_forces(batch_from_atoms(frames, model.species))
    for atoms, energy, f in zip(frames, predicted.detach(), forces.detach().reshape(3, 9, 3)):
        atoms.info["REF_energy"] = float(energy) + 0.5
        atoms.arrays["REF_forces"] = f.numpy()
    metrics = evaluate(model, frames)
    assert abs(metrics["energy_mean_error_meV"] + 500.0) < 1e-6
    assert abs(metrics["energy_mae_meV"] - 500.0) < 1e-6 and metrics["forces_mae_meV_per_A"] < 1e-9


def test_subsets_are_nested():
    small, large = subset_indices(1000, 10, 0), subset_indices(1000, 50, 0)
    assert list(small) == list(large[:10]) and len(set(large)) == 50


@pytest.mark.skipif(
    not (resolve_data_dir() / "rmd17_ethanol_train_01.npz").is_file(),
    reason="rMD17 files not found (set ACECOURSE_RMD17_DIR)",
)
def test_training_learns():
    torch.set_num_threads(1)
    settings = TrainingSettings(n_train=20, n_test=10, epochs=6, batch_size=2, learning_rate=2e-2)
    train, test = load_ethanol_subsets(settings)
    shift, scale = energy_shift_and_scale(train)
    assert -600 < shift < -300 and 0.3 < scale < 3.0  # eV per atom, eV/Å
    result = train_potential(
        {"l_max": 1, "multiplicities": 4}, train, test, settings, progress=False
    )
    curve = result["history"]["test_forces_mae_meV_per_A"]
    assert len(curve) == 6 and curve[-1] < 0.8 * curve[0]
    assert result["final"]["forces_mae_meV_per_A"] < 0.8 * result["initial"]["forces_mae_meV_per_A"]
    torch.manual_seed(settings.seed)  # the untrained model: same seed, same initial weights
    untrained = EquivariantPotential(l_max=1, multiplicities=4, shift=shift, scale=scale)
    assert evaluate(untrained.float(), test) == result["initial"]
