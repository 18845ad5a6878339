"""Tests of acecourse.maths.wigner: definition, group properties, e3nn, characters."""

import numpy as np

from acecourse.maths.rotations import axis_angle_to_matrix, random_rotation
from acecourse.maths.spherical_harmonics import irrep_slice, real_spherical_harmonics
from acecourse.maths.wigner import wigner_D, wigner_D_e3nn

L_MAX = 6


def test_defining_property():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((25, 3))
    for R in random_rotation(rng, n=3):
        Y, Yrot = real_spherical_harmonics(L_MAX, r), real_spherical_harmonics(L_MAX, r @ R.T)
        for l in range(L_MAX + 1):
            D = wigner_D(l, R)
            np.testing.assert_allclose(
                Yrot[:, irrep_slice(l)], Y[:, irrep_slice(l)] @ D.T, atol=1e-12, rtol=0
            )


def test_homomorphism_orthogonality_identity():
    rng = np.random.default_rng(1)
    for l in range(L_MAX + 1):
        R1, R2 = random_rotation(rng), random_rotation(rng)
        D1, D2, D12 = wigner_D(l, R1), wigner_D(l, R2), wigner_D(l, R1 @ R2)
        assert np.abs(D12 - D1 @ D2).max() < 1e-12
        assert np.abs(D1 @ D1.T - np.eye(2 * l + 1)).max() < 1e-12
        assert np.abs(wigner_D(l, R1.T) - D1.T).max() < 1e-12
        assert np.abs(wigner_D(l, np.eye(3)) - np.eye(2 * l + 1)).max() < 1e-12
        assert abs(np.linalg.det(D1) - 1) < 1e-12


def test_l1_is_the_rotation_in_yzx_order():
    R = random_rotation(np.random.default_rng(2))
    perm = [1, 2, 0]  # (y, z, x)
    np.testing.assert_allclose(wigner_D(1, R), R[np.ix_(perm, perm)], atol=1e-14, rtol=0)


def test_batched():
    Rs = random_rotation(np.random.default_rng(3), n=4)
    D = wigner_D(3, Rs)
    assert D.shape == (4, 7, 7)
    np.testing.assert_allclose(D[2], wigner_D(3, Rs[2]), atol=1e-15, rtol=0)


def test_agrees_with_e3nn_including_parity():
    rng = np.random.default_rng(4)
    for l in range(L_MAX + 1):
        R = random_rotation(rng)
        np.testing.assert_allclose(wigner_D(l, R), wigner_D_e3nn(l, R), atol=1e-12, rtol=0)
        # inversion: Y_l(-r) = (-1)^l Y_l(r), e3nn's Irrep(l, (-1)^l) has the same parity
        np.testing.assert_allclose(wigner_D(l, -R), (-1) ** l * wigner_D(l, R), atol=1e-12, rtol=0)
        np.testing.assert_allclose(
            wigner_D(l, -R), wigner_D_e3nn(l, -R, (-1) ** l), atol=1e-12, rtol=0
        )


def test_characters():
    rng = np.random.default_rng(5)
    for l in range(L_MAX + 1):
        for theta in rng.uniform(0.1, np.pi, size=3):
            R = axis_angle_to_matrix(rng.standard_normal(3), theta)
            chi = np.sin((l + 0.5) * theta) / np.sin(theta / 2)
            assert abs(np.trace(wigner_D(l, R)) - chi) < 1e-12


def test_small_d_matches_sakurai_table_and_is_orthogonal():
    from acecourse.maths.wigner import wigner_small_d

    beta = 1.1
    c = np.cos(beta)
    expected_l1 = np.array(  # Sakurai's table of d^1 (rows m' = -1, 0, 1; columns m = -1, 0, 1)
        [
            [(1 + c) / 2, np.sin(beta) / np.sqrt(2), (1 - c) / 2],
            [-np.sin(beta) / np.sqrt(2), c, np.sin(beta) / np.sqrt(2)],
            [(1 - c) / 2, -np.sin(beta) / np.sqrt(2), (1 + c) / 2],
        ]
    )
    np.testing.assert_allclose(wigner_small_d(1, beta), expected_l1, rtol=0, atol=1e-15)
    for l in range(L_MAX + 1):
        d = wigner_small_d(l, beta)
        np.testing.assert_allclose(d @ d.T, np.eye(2 * l + 1), rtol=0, atol=1e-13)
        np.testing.assert_allclose(wigner_small_d(l, 0.0), np.eye(2 * l + 1), rtol=0, atol=0)
        # d^l_{m'm}(pi) = (-1)^(l - m) delta_{m', -m}
        flip = np.fliplr(np.diag([(-1.0) ** (l - m) for m in range(-l, l + 1)][::-1]))
        np.testing.assert_allclose(wigner_small_d(l, np.pi), flip, rtol=0, atol=1e-15)


def test_course_D_is_complex_conjugate_of_textbook_D():
    from acecourse.maths.rotations import euler_zyz_to_matrix
    from acecourse.maths.spherical_harmonics import complex_to_real_matrix
    from acecourse.maths.wigner import textbook_wigner_D

    rng = np.random.default_rng(7)
    for alpha, beta, gamma in zip(
        *rng.uniform([-np.pi, 0, -np.pi], [np.pi, np.pi, np.pi], (3, 3)).T
    ):
        R = euler_zyz_to_matrix(alpha, beta, gamma)
        for l in range(L_MAX + 1):
            U = complex_to_real_matrix(l)
            course_complex = U.conj().T @ wigner_D(l, R) @ U
            textbook = textbook_wigner_D(l, alpha, beta, gamma)
            np.testing.assert_allclose(course_complex, textbook.conj(), rtol=0, atol=1e-13)
            if l >= 1:  # not the matrix itself, nor its transpose
                assert np.abs(course_complex - textbook).max() > 1e-3
                assert np.abs(course_complex - textbook.T).max() > 1e-3
