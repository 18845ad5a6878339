"""Rotations and reflections of three-dimensional space.

Conventions
-----------
* A rotation acts on column vectors, ``r' = R @ r``; for a point cloud stored as rows
  ``positions`` of shape ``(N, 3)`` this is ``positions @ R.T``.
* Rotations are *active* and right-handed: ``axis_angle_to_matrix(axis, angle)`` turns vectors
  counter-clockwise by ``angle`` (radians) when the axis points at the viewer (Rodrigues' formula
  ``R = I + sin(angle) K + (1 - cos(angle)) K^2`` with ``K v = axis x v``).
* Euler angles are ZYZ: ``R(alpha, beta, gamma) = R_z(alpha) @ R_y(beta) @ R_z(gamma)``
  (the convention of quantum-mechanics textbooks, e.g. Sakurai), angles in radians.
* SO(3) is the group of rotations (orthogonal, determinant +1); O(3) adds the inversion
  ``-I``; every element of O(3) is ``R`` or ``-R`` with ``R`` in SO(3).  The parity of an
  orthogonal matrix is its determinant, +1 or -1.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "apply_euclidean",
    "axis_angle_to_matrix",
    "euler_zyz_to_matrix",
    "inversion_matrix",
    "is_orthogonal",
    "is_rotation",
    "matrix_to_axis_angle",
    "matrix_to_euler_zyz",
    "parity",
    "quaternion_to_matrix",
    "random_orthogonal",
    "random_rotation",
    "rotation_x",
    "rotation_y",
    "rotation_z",
    "skew",
]


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrix ``K`` with ``K @ w = v x w``.

    Parameters
    ----------
    v : array (..., 3)

    Returns
    -------
    array (..., 3, 3), antisymmetric.
    """
    v = np.asarray(v, dtype=np.float64)
    zero = np.zeros_like(v[..., 0])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack(
        [
            np.stack([zero, -z, y], axis=-1),
            np.stack([z, zero, -x], axis=-1),
            np.stack([-y, x, zero], axis=-1),
        ],
        axis=-2,
    )


def axis_angle_to_matrix(axis: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rotation by ``angle`` (radians) about ``axis`` (Rodrigues' formula).

    ``R = I + sin(angle) K + (1 - cos(angle)) K @ K`` with ``K = skew(axis / |axis|)``.

    Parameters
    ----------
    axis : array (..., 3)
        Rotation axis, any non-zero length (it is normalised).
    angle : float or array (...)
        Angle in radians, counter-clockwise looking down the axis towards the origin.

    Returns
    -------
    array (..., 3, 3)
    """
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("axis_angle_to_matrix: the rotation axis must be non-zero")
    k = skew(axis / norm)
    angle = np.asarray(angle, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def matrix_to_axis_angle(R: np.ndarray) -> tuple[np.ndarray, float]:
    """Axis (unit vector) and angle in ``[0, pi]`` of a rotation matrix.

    The angle follows from ``trace R = 1 + 2 cos(angle)``; the axis from the antisymmetric part
    ``(R - R^T) / 2 = sin(angle) K`` (``angle = atan2(sin, cos)``), or, for ``angle > pi/2``
    where ``sin(angle) -> 0`` near ``pi``, from the symmetric part
    ``(R + R^T) / 2 - cos(angle) I = (1 - cos(angle)) n n^T`` (the sign of the axis is then irrelevant because a
    rotation by ``pi`` about ``n`` equals one about ``-n``).  For the identity the axis is
    returned as ``(0, 0, 1)``.

    Parameters
    ----------
    R : array (3, 3)
        A rotation matrix.

    Returns
    -------
    axis : array (3,)
    angle : float
    """
    R = np.asarray(R, dtype=np.float64)
    if not is_rotation(R, atol=1e-8):
        raise ValueError("matrix_to_axis_angle: R is not a rotation matrix (orthogonal, det +1)")
    cos_angle = (np.trace(R) - 1.0) / 2.0
    anti = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0
    sin_angle = float(np.linalg.norm(anti))
    angle = float(np.arctan2(sin_angle, cos_angle))  # accurate for every angle, unlike arccos
    if sin_angle < 1e-15 and cos_angle > 0:
        return np.array([0.0, 0.0, 1.0]), 0.0
    if cos_angle >= 0:  # angle <= pi/2: the antisymmetric part sin(angle) n is well conditioned
        return anti / sin_angle, angle
    # angle > pi/2: symmetric part R_sym - cos(angle) I = (1 - cos(angle)) n n^T
    outer = ((R + R.T) / 2.0 - cos_angle * np.eye(3)) / (1.0 - cos_angle)
    i = int(np.argmax(np.diag(outer)))
    axis = outer[:, i] / np.linalg.norm(outer[:, i])
    if np.dot(axis, anti) < 0:  # fix the sign with sin(angle) n when that is resolved
        axis = -axis
    return axis, angle


def rotation_x(angle: float) -> np.ndarray:
    """Rotation about the x axis by ``angle`` radians."""
    return axis_angle_to_matrix([1.0, 0.0, 0.0], angle)


def rotation_y(angle: float) -> np.ndarray:
    """Rotation about the y axis by ``angle`` radians."""
    return axis_angle_to_matrix([0.0, 1.0, 0.0], angle)


def rotation_z(angle: float) -> np.ndarray:
    """Rotation about the z axis by ``angle`` radians."""
    return axis_angle_to_matrix([0.0, 0.0, 1.0], angle)


def euler_zyz_to_matrix(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """ZYZ Euler angles to a matrix, ``R = R_z(alpha) @ R_y(beta) @ R_z(gamma)``.

    Parameters
    ----------
    alpha, beta, gamma : float or arrays broadcasting together
        Angles in radians; ``beta`` in ``[0, pi]`` covers SO(3) once.

    Returns
    -------
    array (..., 3, 3)
    """
    z = np.array([0.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 0.0])
    return (
        axis_angle_to_matrix(z, alpha)
        @ axis_angle_to_matrix(y, beta)
        @ axis_angle_to_matrix(z, gamma)
    )


def matrix_to_euler_zyz(R: np.ndarray) -> tuple[float, float, float]:
    """ZYZ Euler angles ``(alpha, beta, gamma)`` of a rotation matrix.

    From ``R = R_z(alpha) R_y(beta) R_z(gamma)``: ``R[2, 2] = cos(beta)`` and
    ``(R[0, 2], R[1, 2]) = sin(beta) (cos(alpha), sin(alpha))``.  So
    ``beta = atan2(s, R[2, 2])`` with ``s = hypot(R[0, 2], R[1, 2]) = sin(beta)``, accurate at
    every angle (``arccos(R[2, 2])`` loses half the digits near 0 and pi, and turns a rounding
    error of ``R[2, 2]`` into ``beta ~ 1e-8``).  Then ``alpha = atan2(R[1, 2], R[0, 2])`` and
    ``gamma`` is read from the rest, ``R_y(beta)^T R_z(alpha)^T R = R_z(gamma)``, which stays
    exact to rounding when ``s`` is small and ``alpha`` uncertain (reading ``gamma`` from the
    third row, ``sin(beta) (-cos(gamma), sin(gamma))``, would not).  At the gimbal-lock angles
    (``s`` at rounding level, ``beta = 0`` or ``pi``) only ``alpha +- gamma`` is defined; then
    ``gamma = 0`` is returned and ``alpha`` read from ``R R_y(beta)^T = R_z(alpha)``.

    Returns
    -------
    alpha in (-pi, pi], beta in [0, pi], gamma in (-pi, pi]  (radians)
    """
    R = np.asarray(R, dtype=np.float64)
    s = float(np.hypot(R[0, 2], R[1, 2]))  # sin(beta) >= 0
    beta = float(np.arctan2(s, R[2, 2]))
    if s > 1e-15:  # above about 4 rounding steps; below, forcing gamma = 0 costs < 2e-15
        alpha = float(np.arctan2(R[1, 2], R[0, 2]))
        rest = rotation_y(beta).T @ rotation_z(alpha).T @ R  # R_z(gamma)
        gamma = float(np.arctan2(rest[1, 0], rest[0, 0]))
    else:  # gimbal lock: R = R_z(alpha) R_y(beta) up to s, with gamma = 0
        rest = R @ rotation_y(beta).T  # R_z(alpha)
        alpha, gamma = float(np.arctan2(rest[1, 0], rest[0, 0])), 0.0
    return alpha, beta, gamma


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion ``q = (w, x, y, z)`` (normalised here).

    Parameters
    ----------
    q : array (..., 4)

    Returns
    -------
    array (..., 3, 3)
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def random_rotation(
    rng: np.random.Generator | int | None = None, n: int | None = None
) -> np.ndarray:
    """Rotation(s) drawn uniformly (Haar measure) from SO(3).

    A four-dimensional standard normal vector, normalised, is uniform on the unit sphere S^3 of
    quaternions, and the double cover S^3 -> SO(3) maps that uniform measure to the Haar measure.

    Parameters
    ----------
    rng : numpy Generator or seed
    n : int, optional
        Number of rotations; if omitted a single ``(3, 3)`` matrix is returned.

    Returns
    -------
    array (3, 3) or (n, 3, 3)
    """
    rng = _generator(rng)
    q = rng.standard_normal((1 if n is None else n, 4))
    R = quaternion_to_matrix(q)
    return R[0] if n is None else R


def inversion_matrix() -> np.ndarray:
    """The inversion (point reflection) ``-I``, the element of O(3) outside SO(3) that commutes
    with everything."""
    return -np.eye(3)


def random_orthogonal(rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A Haar-random element of O(3): ``s R`` with ``R`` Haar-random in SO(3), ``s = +-1``."""
    rng = _generator(rng)
    R = random_rotation(rng)
    return R if rng.random() < 0.5 else -R


def is_orthogonal(Q: np.ndarray, atol: float = 1e-10) -> bool:
    """True if ``Q^T Q = I`` to ``atol`` (an element of O(3))."""
    Q = np.asarray(Q, dtype=np.float64)
    return Q.shape[-2:] == (3, 3) and bool(np.allclose(Q.T @ Q, np.eye(3), rtol=0, atol=atol))


def is_rotation(R: np.ndarray, atol: float = 1e-10) -> bool:
    """True if ``R`` is a proper rotation: orthogonal and ``det R = +1`` (to ``atol``)."""
    R = np.asarray(R, dtype=np.float64)
    return is_orthogonal(R, atol) and abs(np.linalg.det(R) - 1.0) < atol


def parity(Q: np.ndarray) -> int:
    """Parity of an orthogonal matrix: ``+1`` for rotations, ``-1`` for improper ones."""
    if not is_orthogonal(Q, atol=1e-8):
        raise ValueError("parity: Q is not orthogonal")
    return int(np.sign(np.linalg.det(Q)))


def apply_euclidean(
    positions: np.ndarray, Q: np.ndarray, t: np.ndarray | None = None
) -> np.ndarray:
    """Apply the E(3) element ``r -> Q r + t`` to a point cloud ``positions`` (N, 3).

    ``Q`` in O(3), ``t`` a translation in the units of ``positions`` (e.g. Å).
    """
    positions = np.asarray(positions, dtype=np.float64)
    out = positions @ np.asarray(Q, dtype=np.float64).T
    return out if t is None else out + np.asarray(t, dtype=np.float64)
