"""Tests of acecourse.ace: radial basis, coupling, invariant basis, counting, naive tuple sum."""

import numpy as np
import pytest
import torch

from acecourse.ace.basis import (
    InvariantBasis,
    atomic_base_from_neighbours,
    atomic_base_of_molecules,
)
from acecourse.ace.cost import naive_tuple_sum
from acecourse.ace.counting import character_invariant_count, numerical_rank
from acecourse.ace.coupling import coupling_paths, independent_couplings, path_tensor
from acecourse.ace.radial import bessel_radial_basis, polynomial_envelope
from acecourse.maths.rotations import random_rotation
from acecourse.maths.wigner import wigner_D

R_CUT = 5.0


def environments(n_env, n_neighbours, n_species, seed):
    g = np.random.default_rng(seed)
    d = g.normal(size=(n_env, n_neighbours, 3))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    r = g.uniform(0.8, 4.7, size=(n_env, n_neighbours, 1))
    return torch.tensor(r * d), torch.tensor(g.integers(0, n_species, (n_env, n_neighbours)))


def test_bessel_orthonormal_and_envelope_smooth():
    nodes, weights = np.polynomial.legendre.leggauss(200)
    r = torch.tensor(R_CUT * (nodes + 1) / 2, dtype=torch.float64)
    bare = bessel_radial_basis(r, 6, R_CUT) / polynomial_envelope(r, R_CUT).unsqueeze(-1)
    gram = torch.einsum("k,kn,km->nm", torch.tensor(weights * R_CUT / 2) * r**2, bare, bare)
    assert torch.allclose(gram, torch.eye(6, dtype=torch.float64), atol=1e-10, rtol=0)
    x = torch.tensor(R_CUT * (1 - 1e-15), dtype=torch.float64, requires_grad=True)
    f = polynomial_envelope(x, R_CUT)
    (d1,) = torch.autograd.grad(f, x, create_graph=True)
    (d2,) = torch.autograd.grad(d1, x)
    assert abs(f.item()) < 1e-12 and abs(d1.item()) < 1e-12 and abs(d2.item()) < 1e-10
    assert float(polynomial_envelope(torch.tensor(6.0), R_CUT)) == 0.0


def test_atomic_base_equivariant():
    vec, spc = environments(3, 10, 2, seed=0)
    base = atomic_base_from_neighbours(vec, spc, 2, 3, 3, R_CUT)
    for seed in range(3):
        for Q in (random_rotation(seed), -random_rotation(seed)):
            rotated = atomic_base_from_neighbours(vec @ torch.tensor(Q).T, spc, 2, 3, 3, R_CUT)
            for l in range(4):
                block = slice(l * l, (l + 1) ** 2)
                expected = base[..., block] @ torch.tensor(wigner_D(l, Q)).T
                assert torch.allclose(rotated[..., block], expected, atol=1e-12, rtol=0)


def test_coupling_paths_and_symmetrisation():
    assert coupling_paths((1, 1, 1, 1)) == [(0,), (1,), (2,)]
    assert coupling_paths((1, 2, 4)) == []
    assert path_tensor((1, 2, 3), ()).shape == (3, 5, 7)
    # four equal l=1 factors: only |a|^4 survives; four equal l=2: only tr(M^2)^2
    assert len(independent_couplings((1, 1, 1, 1), (0, 0, 0, 0))[1]) == 1
    assert len(independent_couplings((2, 2, 2, 2), (0, 0, 0, 0))[1]) == 1
    assert len(independent_couplings((1, 1, 1, 1), (0, 1, 2, 3))[1]) == 3


@pytest.mark.parametrize("n_channels,l_max", [(1, 2), (2, 2), (2, 3)])
def test_counts_agree_with_characters_and_rank(n_channels, l_max):
    for nu in (1, 2, 3, 4):
        orders = {nu: (n_channels, l_max if nu > 1 else 0)}
        basis = InvariantBasis(1, n_channels, orders)
        assert basis.n_features == character_invariant_count(nu, n_channels, orders[nu][1])
        if nu == 4 and n_channels * l_max > 4:
            continue  # rank of the largest case is covered in the notebook
        vec, spc = environments(3 * basis.n_features + 20, 16, 1, seed=nu)
        features = basis(atomic_base_from_neighbours(vec, spc, 1, n_channels, l_max, R_CUT))
        assert numerical_rank(features.numpy()) == basis.n_features


def test_naive_count_exceeds_independent_at_nu4():
    naive = InvariantBasis(1, 2, {4: (2, 2)}, reduce=False)
    basis = InvariantBasis(1, 2, {4: (2, 2)})
    assert (naive.n_features, basis.n_features) == (110, 75)
    assert character_invariant_count(4, 2, 2, reflections=False) == 87


def test_invariance_rotation_reflection_permutation():
    basis = InvariantBasis(3, 3, {1: (3, 0), 2: (3, 3), 3: (2, 2), 4: (1, 2)})
    vec, spc = environments(5, 12, 3, seed=4)

    def evaluate(v, s):
        return basis(atomic_base_from_neighbours(v, s, 3, 3, 3, R_CUT))

    ref = evaluate(vec, spc)
    rng = np.random.default_rng(1)
    for Q in (random_rotation(rng), -random_rotation(rng), -np.eye(3)):
        assert (evaluate(vec @ torch.tensor(Q).T, spc) - ref).abs().max() < 1e-10
    perm = torch.tensor(rng.permutation(12))
    assert (evaluate(vec[:, perm], spc[:, perm]) - ref).abs().max() < 1e-10


def test_density_trick_equals_tuple_sum():
    basis = InvariantBasis(2, 2, {1: (2, 0), 2: (2, 2), 3: (1, 2)})
    vec, spc = environments(1, 6, 2, seed=9)
    fast = basis(atomic_base_from_neighbours(vec[0], spc[0], 2, 2, 2, R_CUT))
    slow = naive_tuple_sum(basis, vec[0], spc[0], R_CUT)
    assert torch.allclose(fast, slow, atol=1e-13, rtol=0)


def test_derivative_matches_autograd():
    basis = InvariantBasis(2, 2, {1: (2, 0), 2: (2, 2), 3: (2, 1)})
    pos = torch.tensor(np.random.default_rng(3).normal(size=(5, 3)) * 1.2)
    species = torch.tensor([0, 1, 1, 0, 1])

    def base_of(p):
        return atomic_base_of_molecules(p, species, 2, 2, 2, R_CUT)

    dbase = torch.func.jacfwd(base_of)(pos).reshape(5, 4, 9, 15)
    values, derivative = basis.with_derivative(base_of(pos), dbase)
    reference = torch.func.jacrev(lambda p: basis(base_of(p)))(pos).reshape(5, basis.n_features, 15)
    assert torch.allclose(values, basis(base_of(pos)), atol=1e-14, rtol=0)
    assert torch.allclose(derivative, reference, atol=1e-12, rtol=0)


def test_envelope_is_mace_torchs():
    """Chapter 01/01 says MACE uses the same envelope and mace-torch's training default is p = 5."""
    import acecourse._mace_import  # noqa: F401, I001  (first: mace-torch without its cuEquivariance notice)
    from mace.modules.radial import PolynomialCutoff
    from mace.tools.arg_parser import build_default_arg_parser

    r = torch.linspace(0.0, 1.2 * R_CUT, 121, dtype=torch.float64)
    for p in (5, 6):
        theirs = PolynomialCutoff(R_CUT, p)(r).to(torch.float64)
        assert torch.allclose(polynomial_envelope(r, R_CUT, p), theirs, atol=1e-14, rtol=0)
    # the comparison can fail: the two orders differ
    assert (polynomial_envelope(r, R_CUT, 5) - polynomial_envelope(r, R_CUT, 6)).abs().max() > 1e-2
    assert build_default_arg_parser().get_default("num_cutoff_basis") == 5
