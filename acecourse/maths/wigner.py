r"""Wigner D matrices in the course's real basis.

Definition: for a rotation ``R`` the real spherical harmonics of degree ``l`` transform linearly,

.. math::  Y_l(R\,\hat r) = D_l(R)\, Y_l(\hat r),

with ``Y_l`` the vector of the 2l+1 harmonics of :mod:`acecourse.maths.spherical_harmonics`
(index ``m + l``).  ``D_l`` is real orthogonal and a homomorphism,
``D_l(R_1 R_2) = D_l(R_1) D_l(R_2)``.

Computation: project onto the orthonormal basis.  Multiplying by ``Y_l(r)^T`` and integrating
over the sphere gives ``D_l(R) = \int Y_l(R r) Y_l(r)^T d\Omega``; the integrand is a polynomial
of degree 2l, so a Gauss-Legendre x uniform-phi grid with degree 2l integrates it exactly.
For an improper ``Q = -R`` the same formula gives ``D_l(-R) = (-1)^l D_l(R)`` (parity of
``Y_l``), so the function accepts any orthogonal matrix.
"""

from __future__ import annotations

import numpy as np

from acecourse.maths.spherical_harmonics import (
    irrep_slice,
    real_spherical_harmonics,
    sphere_quadrature,
)

__all__ = ["wigner_D", "wigner_D_e3nn"]


def wigner_D(l: int, R: np.ndarray) -> np.ndarray:
    """Real Wigner D matrix ``D_l(R)`` with ``Y_l(R r) = D_l(R) @ Y_l(r)``.

    Parameters
    ----------
    l : int
        Degree.
    R : array (3, 3) or (..., 3, 3)
        Orthogonal matrices (rotations, or improper ones: then ``D_l`` includes ``(-1)^l``).

    Returns
    -------
    array (..., 2l+1, 2l+1), float64, orthogonal.
    """
    R = np.asarray(R, dtype=np.float64)
    points, weights = sphere_quadrature(2 * l)
    y = real_spherical_harmonics(l, points)[:, irrep_slice(l)]  # (n, 2l+1)
    rotated = np.einsum("...ij,nj->...ni", R, points)  # (..., n, 3): R r for every grid point
    y_rot = real_spherical_harmonics(l, rotated)[..., irrep_slice(l)]  # (..., n, 2l+1)
    return np.einsum("...ni,n,nj->...ij", y_rot, weights, y)


def wigner_D_e3nn(l: int, R: np.ndarray, parity: int = 1) -> np.ndarray:
    """e3nn's ``Irrep(l, parity).D_from_matrix(R)`` converted to the course basis.

    With ``P = e3nn_to_course_basis(l)``, ``D_course = P @ D_e3nn @ P.T``.  A cross-check of
    :func:`wigner_D` used in the tests and notebooks (needs e3nn).
    """
    import torch

    torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4 constants with torch >= 2.6
    from e3nn import o3

    from acecourse.maths.spherical_harmonics import e3nn_to_course_basis

    d = o3.Irrep(l, parity).D_from_matrix(torch.as_tensor(np.asarray(R), dtype=torch.float64))
    P = e3nn_to_course_basis(l)
    return P @ d.numpy() @ P.T
