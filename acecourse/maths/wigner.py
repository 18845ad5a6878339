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

Relation to the textbooks: Sakurai and Varshalovich define, in the complex basis with the
Condon-Shortley phase, ``D^l_{m'm}(R) = <l m'| exp(-i J.n theta) |l m> =
exp(-i m' alpha) d^l_{m'm}(beta) exp(-i m gamma)`` (:func:`textbook_wigner_D`), which acts on
functions as ``f -> f(R^{-1} .)``.  The course's matrix moves the argument the other way,
``Y(R r) = D(R) Y(r)``; in the complex basis (``Y_real = U Y_complex``,
:func:`acecourse.maths.spherical_harmonics.complex_to_real_matrix`) it is the complex conjugate
of the textbook matrix: ``U^H wigner_D(l, R) U = conj(textbook_wigner_D(l, alpha, beta, gamma))``.
"""

from __future__ import annotations

from math import factorial, sqrt

import numpy as np

from acecourse.maths.spherical_harmonics import (
    irrep_slice,
    real_spherical_harmonics,
    sphere_quadrature,
)

__all__ = ["textbook_wigner_D", "wigner_D", "wigner_D_e3nn", "wigner_small_d"]


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

    With ``B = e3nn_to_course_basis(l)``, ``D_course = B @ D_e3nn @ B.T``.  A cross-check of
    :func:`wigner_D` used in the tests and notebooks (needs e3nn).
    """
    import torch
    from e3nn import o3  # importable: the package allow-lists slice for its constants

    from acecourse.maths.spherical_harmonics import e3nn_to_course_basis

    d = o3.Irrep(l, parity).D_from_matrix(torch.as_tensor(np.asarray(R), dtype=torch.float64))
    B = e3nn_to_course_basis(l)
    return B @ d.numpy() @ B.T


def wigner_small_d(l: int, beta: float) -> np.ndarray:
    r"""Wigner's small d-matrix ``d^l_{m'm}(beta)`` of the textbooks (Wigner's formula, as in Sakurai).

    .. math::

        d^l_{m'm}(\beta) = \sum_k (-1)^{k-m+m'}
        \frac{\sqrt{(l+m)!\,(l-m)!\,(l+m')!\,(l-m')!}}{(l+m-k)!\,k!\,(l-k-m')!\,(k-m+m')!}
        \cos^{2l-2k+m-m'}\tfrac{\beta}{2}\,\sin^{2k-m+m'}\tfrac{\beta}{2},

    the matrix of :math:`e^{-i\beta J_y}` in the basis :math:`|l m\rangle`; e.g.
    ``d^1_{10} = -sin(beta)/sqrt(2)``.

    Returns
    -------
    array (2l+1, 2l+1), real; rows ``m' + l``, columns ``m + l``.
    """
    d = np.zeros((2 * l + 1, 2 * l + 1))
    c, s = np.cos(beta / 2), np.sin(beta / 2)
    for mp in range(-l, l + 1):
        for m in range(-l, l + 1):
            norm = sqrt(factorial(l + m) * factorial(l - m) * factorial(l + mp) * factorial(l - mp))
            for k in range(max(0, m - mp), min(l + m, l - mp) + 1):
                d[mp + l, m + l] += (
                    (-1) ** (k - m + mp)
                    * norm
                    / (
                        factorial(l + m - k)
                        * factorial(k)
                        * factorial(l - k - mp)
                        * factorial(k - m + mp)
                    )
                    * c ** (2 * l - 2 * k + m - mp)
                    * s ** (2 * k - m + mp)
                )
    return d


def textbook_wigner_D(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Complex ``D^l_{m'm} = exp(-i m' alpha) d^l_{m'm}(beta) exp(-i m gamma)`` (Sakurai, Varshalovich).

    For the rotation ``R = R_z(alpha) R_y(beta) R_z(gamma)`` (ZYZ, active) in the complex basis
    with the Condon-Shortley phase.  The course's :func:`wigner_D` in that basis is its complex
    conjugate (see the module docstring).
    """
    m = np.arange(-l, l + 1)
    return (
        np.exp(-1j * m * alpha)[:, None]
        * wigner_small_d(l, beta)
        * np.exp(-1j * m * gamma)[None, :]
    )
