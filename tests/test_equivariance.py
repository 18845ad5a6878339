"""Tests of the course's equivariance helper: it passes symmetric models and catches broken ones."""

import numpy as np
import pytest
import torch

from acecourse.equivariance import (
    assert_equivariant,
    check_equivariance,
    forces_from_energy,
    random_orthogonal_matrices,
)


@pytest.fixture()
def molecule():
    generator = torch.Generator().manual_seed(0)
    positions = torch.randn(7, 3, dtype=torch.float64, generator=generator) * 1.5
    species = torch.tensor([6, 6, 8, 1, 1, 1, 1])
    return positions, species


def pair_energy(positions, species):
    """An invariant toy energy: species-weighted Gaussian pair terms (eV)."""
    distances = (positions[:, None] - positions[None]).norm(dim=-1)
    weights = (species[:, None] * species[None]).to(positions.dtype) / 36.0
    mask = ~torch.eye(len(positions), dtype=torch.bool)
    return (weights * torch.exp(-(distances**2)))[mask].sum()


def dipole(positions, species):
    charges = torch.where(species == 1, 0.3, -0.2).to(positions.dtype)
    charges = charges - charges.mean()
    return (charges[:, None] * positions).sum(0)


def test_random_orthogonal_matrices():
    q = random_orthogonal_matrices(6, np.random.default_rng(1))
    assert q.dtype == torch.float64 and q.shape == (6, 3, 3)
    np.testing.assert_allclose(
        q @ q.transpose(1, 2), np.broadcast_to(np.eye(3), (6, 3, 3)), rtol=0, atol=1e-14
    )
    np.testing.assert_allclose(torch.linalg.det(q), [1, -1, 1, -1, 1, -1], rtol=0, atol=1e-13)
    rotations = random_orthogonal_matrices(4, 2, include_reflections=False)
    np.testing.assert_allclose(torch.linalg.det(rotations), np.ones(4), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(
        random_orthogonal_matrices(3, 5), random_orthogonal_matrices(3, 5)
    )


def test_invariant_energy_and_equivariant_forces(molecule):
    errors = assert_equivariant(pair_energy, *molecule, "0e")
    assert set(errors) == {"rotation", "reflection", "translation", "permutation"}
    assert assert_equivariant(forces_from_energy(pair_energy), *molecule, "1o")["rotation"] < 1e-12


def test_forces_match_finite_differences(molecule):
    positions, species = molecule
    forces = forces_from_energy(pair_energy)(positions, species)
    step = 1e-6
    shifted = positions.clone()
    shifted[2, 1] += step
    plus = pair_energy(shifted, species)
    shifted[2, 1] -= 2 * step
    minus = pair_energy(shifted, species)
    assert abs(float(-(plus - minus) / (2 * step) - forces[2, 1])) < 1e-8


def test_mixed_irreps_per_graph(molecule):
    def energy_and_dipole(positions, species):
        return torch.cat([pair_energy(positions, species)[None], dipole(positions, species)])

    assert_equivariant(energy_and_dipole, *molecule, "0e+1o")


def test_catches_x_coordinate_model(molecule):
    """A model that reads only x-coordinates is neither rotation nor translation invariant."""

    def x_only(positions, species):
        return (positions[:, 0] ** 2).sum()

    errors = check_equivariance(x_only, *molecule, "0e")
    assert errors["rotation"] > 1e-2 and errors["translation"] > 1e-2
    assert errors["permutation"] < 1e-12
    with pytest.raises(AssertionError, match="rotation"):
        assert_equivariant(x_only, *molecule, "0e")


def test_catches_wrong_parity_and_order(molecule):
    """A cross product is a pseudo-vector (1e), not a vector (1o); it also depends on atom order."""

    def cross(positions, species):
        return torch.linalg.cross(positions[1] - positions[0], positions[2] - positions[0])

    errors = check_equivariance(cross, *molecule, "1e", permutations=False)
    assert max(errors.values()) < 1e-12
    wrong = check_equivariance(cross, *molecule, "1o")
    assert wrong["rotation"] < 1e-12 and wrong["reflection"] > 1e-2 and wrong["permutation"] > 1e-2
    with pytest.raises(AssertionError, match="reflection"):
        assert_equivariant(cross, *molecule, "1o", permutations=False)
    assert_equivariant(cross, *molecule, "1o", reflections=False, permutations=False)


def test_per_atom_outputs(molecule):
    """Per-atom vectors must permute with the atoms; shuffling them is caught."""
    forces = forces_from_energy(pair_energy)
    assert_equivariant(forces, *molecule, "1o", per_atom=True)
    errors = check_equivariance(
        lambda p, s: forces(p, s)[torch.arange(len(p)).roll(1)], *molecule, "1o"
    )
    assert errors["permutation"] > 1e-3 and errors["rotation"] < 1e-12


def test_shape_error(molecule):
    with pytest.raises(ValueError, match="irreps"):
        check_equivariance(dipole, *molecule, "0e+1o")
