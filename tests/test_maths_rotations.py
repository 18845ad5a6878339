"""Tests of acecourse.maths.rotations: group properties, conversions, Haar sampling."""

import itertools

import numpy as np
import pytest

from acecourse.maths.rotations import (
    apply_euclidean,
    axis_angle_to_matrix,
    euler_zyz_to_matrix,
    inversion_matrix,
    is_orthogonal,
    is_rotation,
    matrix_to_axis_angle,
    matrix_to_euler_zyz,
    parity,
    random_orthogonal,
    random_rotation,
    rotation_y,
    rotation_z,
    skew,
)


def test_rodrigues_matches_explicit_z_rotation():
    angle = 0.7
    expected = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    np.testing.assert_allclose(
        axis_angle_to_matrix([0, 0, 2.0], angle), expected, atol=1e-15, rtol=0
    )
    # counter-clockwise: x goes to y for a quarter turn about z
    np.testing.assert_allclose(rotation_z(np.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-15, rtol=0)


def test_rodrigues_equals_matrix_exponential():
    rng = np.random.default_rng(0)
    for _ in range(10):
        axis = rng.standard_normal(3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(-np.pi, np.pi)
        # exp(angle K) by a long Taylor series
        k = skew(axis) * angle
        term, total = np.eye(3), np.eye(3)
        for n in range(1, 40):
            term = term @ k / n
            total = total + term
        np.testing.assert_allclose(axis_angle_to_matrix(axis, angle), total, atol=1e-13, rtol=0)


def test_random_rotations_are_rotations_and_group_closed():
    rng = np.random.default_rng(1)
    Rs = random_rotation(rng, n=50)
    assert Rs.shape == (50, 3, 3)
    for R1, R2 in itertools.pairwise(Rs):
        assert is_rotation(R1, atol=1e-12)
        assert is_rotation(R1 @ R2, atol=1e-12)
        assert is_rotation(R1.T, atol=1e-12)
        np.testing.assert_allclose(R1 @ R1.T, np.eye(3), atol=1e-12, rtol=0)
    assert not is_rotation(-Rs[0])
    assert not is_rotation(Rs[0] * 1.01)


def test_haar_measure_moments():
    # For Haar-random R: E[R] = 0 and E[R_ij^2] = 1/3 (each row is uniform on the sphere)
    Rs = random_rotation(np.random.default_rng(2), n=20000)
    assert np.abs(Rs.mean(axis=0)).max() < 0.02
    assert np.abs((Rs**2).mean(axis=0) - 1 / 3).max() < 0.01
    # the rotation angle has density (1 - cos t) / pi on [0, pi]: mean angle = pi/2 + 2/pi
    angles = np.arccos(np.clip((np.trace(Rs, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert abs(angles.mean() - (np.pi / 2 + 2 / np.pi)) < 0.02


def test_axis_angle_round_trip_including_pi_and_identity():
    rng = np.random.default_rng(3)
    cases = [(rng.standard_normal(3), rng.uniform(0, np.pi)) for _ in range(20)]
    cases += [([1, 2, 3], np.pi), ([0, 0, 1], np.pi - 1e-9), ([1, 0, 0], 1e-14)]
    for axis, angle in cases:
        R = axis_angle_to_matrix(axis, angle)
        axis2, angle2 = matrix_to_axis_angle(R)
        np.testing.assert_allclose(axis_angle_to_matrix(axis2, angle2), R, atol=1e-10, rtol=0)
    np.testing.assert_allclose(matrix_to_axis_angle(np.eye(3))[1], 0.0, rtol=0)
    with pytest.raises(ValueError):
        matrix_to_axis_angle(-np.eye(3))


def test_euler_zyz_definition_and_round_trip():
    a, b, c = 0.3, 1.1, -2.0
    np.testing.assert_allclose(
        euler_zyz_to_matrix(a, b, c),
        rotation_z(a) @ rotation_y(b) @ rotation_z(c),
        atol=1e-15,
        rtol=0,
    )
    rng = np.random.default_rng(4)
    for R in random_rotation(rng, n=20):
        np.testing.assert_allclose(
            euler_zyz_to_matrix(*matrix_to_euler_zyz(R)), R, atol=1e-12, rtol=0
        )
    for R in [rotation_z(0.4), rotation_z(0.4) @ rotation_y(np.pi)]:  # gimbal lock
        np.testing.assert_allclose(
            euler_zyz_to_matrix(*matrix_to_euler_zyz(R)), R, atol=1e-12, rtol=0
        )


def test_non_commutativity():
    R1, R2 = rotation_z(np.pi / 2), rotation_y(np.pi / 2)
    assert np.abs(R1 @ R2 - R2 @ R1).max() > 0.5


def test_inversion_and_parity():
    rng = np.random.default_rng(5)
    P = inversion_matrix()
    assert parity(P) == -1 and is_orthogonal(P) and not is_rotation(P)
    R = random_rotation(rng)
    np.testing.assert_allclose(P @ R, R @ P, rtol=0)  # inversion commutes with everything
    parities = {parity(random_orthogonal(rng)) for _ in range(40)}
    assert parities == {-1, 1}
    # the cross product is a pseudovector: (Q a) x (Q b) = det(Q) Q (a x b)
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    for Q in [R, -R]:
        np.testing.assert_allclose(
            np.cross(Q @ a, Q @ b), parity(Q) * Q @ np.cross(a, b), atol=1e-12, rtol=0
        )


def test_euclidean_action_preserves_distances():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, 3))
    y = apply_euclidean(x, random_orthogonal(rng), rng.standard_normal(3))
    d = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)
    np.testing.assert_allclose(d(x), d(y), atol=1e-12, rtol=0)


def _round_trip_error(R):
    return np.abs(euler_zyz_to_matrix(*matrix_to_euler_zyz(R)) - R).max()


@pytest.mark.parametrize("pole", [0.0, np.pi])
def test_euler_zyz_round_trip_one_rounding_step_from_gimbal_lock(pole):
    # issue 22 item 19: R = Q^T Q R_z(-0.8) (R_y(pi)) has R[2, 2] one rounding step from +-1;
    # arccos(R[2, 2]) gave beta ~ 1.5e-8 and alpha, gamma read from rounding noise (80 of 200
    # seeds failed, error up to 1.43)
    errors = []
    for seed in range(200):
        Q = random_rotation(seed)
        R = Q.T @ Q @ rotation_z(-0.8) @ rotation_y(pole)
        errors.append(_round_trip_error(R))
        _, beta, gamma = matrix_to_euler_zyz(R)
        assert abs(beta - pole) < 1e-15 and gamma == 0.0  # the gimbal-lock convention
    assert max(errors) < 5e-15  # rounding (20 eps); before the fix: 1.43


@pytest.mark.parametrize("pole", [0.0, np.pi])
def test_euler_zyz_near_both_poles(pole):
    # beta -> 0 and beta -> pi: the matrix comes back to rounding, and beta itself to rounding
    # (arccos loses half the digits there: arccos(cos 1e-6) is off by ~1e-10)
    rng = np.random.default_rng(8)
    for distance in [1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2]:
        for _ in range(20):
            alpha, gamma = rng.uniform(-np.pi, np.pi, 2)
            beta = pole + distance if pole == 0.0 else pole - distance
            R = euler_zyz_to_matrix(alpha, beta, gamma)
            assert _round_trip_error(R) < 5e-15
            assert abs(matrix_to_euler_zyz(R)[1] - beta) < 1e-15
