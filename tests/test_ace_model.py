"""Tests of the linear ACE model: descriptor Jacobian, symmetry of forces, exact recovery by ridge."""

import numpy as np
import torch

from acecourse.ace.fit import NormalEquations
from acecourse.ace.model import ACEDescriptor
from acecourse.equivariance import check_equivariance


def molecule(seed, n_frames=4):
    g = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [1.5, 0, 0], [2.0, 1.3, 0], [-0.6, 0.9, 0.1], [-0.5, -0.9, 0.3]])
    return torch.tensor(base + 0.05 * g.normal(size=(n_frames, 5, 3))), torch.tensor(
        [1, 1, 2, 0, 0]
    )


def test_jacobian_matches_finite_differences():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (3, 2), 3: (2, 1)})
    pos, species = molecule(0)
    x, jac = d.features_and_jacobian(pos, species, chunk_size=3)
    assert x.shape == (4, d.n_features) and jac.shape == (4, d.n_features, 5, 3)
    assert torch.allclose(x, d.structure_features(pos, species), atol=1e-14)
    eps = 1e-6
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        plus, minus = pos[1].clone(), pos[1].clone()
        plus[atom, axis] += eps
        minus[atom, axis] -= eps
        fd = (d.structure_features(plus, species) - d.structure_features(minus, species)) / (
            2 * eps
        )
        assert torch.allclose(fd, jac[1, :, atom, axis], atol=1e-8)


def test_forces_of_linear_model_are_equivariant():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (3, 2), 3: (2, 1)})
    coef = torch.tensor(np.random.default_rng(1).normal(size=d.n_features))
    pos, species = molecule(1, 1)

    def forces(p, s):
        _, jac = d.features_and_jacobian(p.unsqueeze(0), s)
        return -torch.einsum("bfnx,f->nx", jac, coef)

    errors = check_equivariance(forces, pos[0], species, "1o", per_atom=True)
    assert max(errors.values()) < 1e-10


def test_ridge_recovers_a_linear_model():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (2, 1)})
    pos, species = molecule(2, 40)
    x, jac = d.features_and_jacobian(pos, species)
    x, jac = x.numpy(), jac.numpy()
    g = np.random.default_rng(2)
    coef = g.normal(size=d.n_features) * (np.abs(x).max(0) > 0)
    energies = x @ coef + 3.0
    forces = -np.einsum("bfnx,f->bnx", jac, coef)
    normal = NormalEquations(d.n_features)
    normal.add(x[:20], energies[:20], jac[:20], forces[:20])
    normal.add(x[20:], energies[20:], jac[20:], forces[20:])
    fit = normal.solve(ridge=1e-12, force_weight=1.0)
    pe, pf = fit.predict(x, jac)
    assert np.abs(pe - energies).max() < 1e-6 and np.abs(pf - forces).max() < 1e-6
