"""Tests of acecourse.maths.clebsch_gordan against sympy, e3nn and equivariance."""

import numpy as np
import pytest
import torch
from e3nn import o3
from sympy.physics.quantum.cg import CG

from acecourse.maths.clebsch_gordan import (
    clebsch_gordan,
    clebsch_gordan_tensor,
    real_coupling_tensor,
)
from acecourse.maths.rotations import random_rotation
from acecourse.maths.spherical_harmonics import (
    e3nn_to_course_basis,
    irrep_slice,
    real_spherical_harmonics,
)
from acecourse.maths.wigner import wigner_D

L_MAX = 4


def test_equals_sympy_for_all_l_up_to_4():
    """Every l1, l2 <= 4, every L in 0..l1+l2+1, every m1, m2, M (37,800 values, ~5 s)."""
    worst = 0.0
    count = 0
    for l1 in range(L_MAX + 1):
        for l2 in range(L_MAX + 1):
            for L in range(l1 + l2 + 2):
                for m1 in range(-l1, l1 + 1):
                    for m2 in range(-l2, l2 + 1):
                        for M in range(-L, L + 1):
                            ref = float(CG(l1, m1, l2, m2, L, M).doit())
                            worst = max(worst, abs(ref - clebsch_gordan(l1, m1, l2, m2, L, M)))
                            count += 1
    assert count == 37800
    assert worst <= 1e-12, worst


def test_selection_rules_and_orthogonality():
    for l1 in range(L_MAX + 1):
        for l2 in range(L_MAX + 1):
            # the CG matrix (m1 m2) -> (L M) is orthogonal
            rows = [
                clebsch_gordan_tensor(l1, l2, L).reshape(-1, 2 * L + 1)
                for L in range(abs(l1 - l2), l1 + l2 + 1)
            ]
            U = np.concatenate(rows, axis=1)
            np.testing.assert_allclose(U.T @ U, np.eye(U.shape[1]), atol=1e-14, rtol=0)
            np.testing.assert_allclose(U @ U.T, np.eye(U.shape[0]), atol=1e-14, rtol=0)
    assert clebsch_gordan(1, 1, 1, 0, 2, 0) == 0.0  # M != m1 + m2
    assert clebsch_gordan(1, 0, 1, 0, 3, 0) == 0.0  # triangle
    assert clebsch_gordan(1, 0, 1, 0, 1, 0) == 0.0  # l1 + l2 + L odd with all m = 0
    assert np.abs(clebsch_gordan_tensor(1, 1, 3)).max() == 0.0
    with pytest.raises(ValueError):
        real_coupling_tensor(1, 1, 3)


def _all_triples():
    for l1 in range(L_MAX + 1):
        for l2 in range(L_MAX + 1):
            for L in range(abs(l1 - l2), l1 + l2 + 1):
                yield l1, l2, L


def test_real_coupling_is_real_normalised_equivariant():
    rng = np.random.default_rng(0)
    r, s = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    R = random_rotation(rng)
    Yr, Ys = real_spherical_harmonics(2 * L_MAX, r), real_spherical_harmonics(2 * L_MAX, s)
    Yr_rot, Ys_rot = (
        real_spherical_harmonics(2 * L_MAX, r @ R.T),
        real_spherical_harmonics(2 * L_MAX, s @ R.T),
    )
    worst = 0.0
    for l1, l2, L in _all_triples():
        C = real_coupling_tensor(l1, l2, L)
        assert C.dtype == np.float64 and C.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * L + 1)
        assert abs(np.linalg.norm(C) - 1) < 1e-14
        out = np.einsum("abc,na,nb->nc", C, Yr[:, irrep_slice(l1)], Ys[:, irrep_slice(l2)])
        out_rot = np.einsum(
            "abc,na,nb->nc", C, Yr_rot[:, irrep_slice(l1)], Ys_rot[:, irrep_slice(l2)]
        )
        worst = max(worst, np.abs(out_rot - out @ wigner_D(L, R).T).max())
        # and on arbitrary (non-harmonic) inputs, as an intertwiner
        x, y = rng.standard_normal(2 * l1 + 1), rng.standard_normal(2 * l2 + 1)
        lhs = np.einsum("abc,a,b->c", C, wigner_D(l1, R) @ x, wigner_D(l2, R) @ y)
        rhs = wigner_D(L, R) @ np.einsum("abc,a,b->c", C, x, y)
        worst = max(worst, np.abs(lhs - rhs).max())
    assert worst < 1e-12, worst


def test_real_coupling_equals_e3nn_wigner_3j_up_to_sign():
    worst = 0.0
    for l1, l2, L in _all_triples():
        W = o3.wigner_3j(l1, l2, L, dtype=torch.float64).numpy()
        P1, P2, PL = e3nn_to_course_basis(l1), e3nn_to_course_basis(l2), e3nn_to_course_basis(L)
        W_course = np.einsum("ia,jb,kc,abc->ijk", P1, P2, PL, W)
        C = real_coupling_tensor(l1, l2, L)
        sign = np.sign(np.sum(W_course * C))
        worst = max(worst, np.abs(W_course - sign * C).max())
    assert worst < 1e-12, worst


def test_coupling_l1_l1_to_0_and_1_are_dot_and_cross():
    C0, C1 = real_coupling_tensor(1, 1, 0), real_coupling_tensor(1, 1, 1)
    a, b = np.random.default_rng(1).standard_normal((2, 3))
    # in the (y, z, x) basis
    perm = [1, 2, 0]
    dot = np.einsum("abc,a,b->c", C0, a[perm], b[perm])
    cross = np.einsum("abc,a,b->c", C1, a[perm], b[perm])
    np.testing.assert_allclose(abs(dot[0]), abs(a @ b) / np.sqrt(3), atol=1e-14, rtol=0)
    np.testing.assert_allclose(
        np.abs(cross), np.abs(np.cross(a, b)[perm]) / np.sqrt(6), atol=1e-14, rtol=0
    )
