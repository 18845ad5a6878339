r"""Associated Legendre functions and the course's real spherical harmonics.

Convention (used by every chapter, see ``CONTRIBUTING.md``)
----------------------------------------------------------
For a direction :math:`\hat r = (x, y, z) = (\sin\theta\cos\phi, \sin\theta\sin\phi, \cos\theta)`
the real spherical harmonics are

.. math::

    Y_{lm}(\hat r) = \begin{cases}
        \sqrt{2}\, N_l^{m}\, P_l^{m}(\cos\theta)\cos(m\phi) & m > 0 \\
        N_l^{0}\, P_l(\cos\theta) & m = 0 \\
        \sqrt{2}\, N_l^{|m|}\, P_l^{|m|}(\cos\theta)\sin(|m|\phi) & m < 0
    \end{cases},
    \qquad N_l^m = \sqrt{\frac{2l+1}{4\pi}\frac{(l-m)!}{(l+m)!}},

where :math:`P_l^m` is the associated Legendre function **without** the Condon-Shortley phase,
:math:`P_l^m(x) = (1-x^2)^{m/2} \frac{d^m}{dx^m} P_l(x) \ge 0` near :math:`x = 1`.  These are the
real harmonics of Wikipedia's table: :math:`Y_{1,-1}, Y_{10}, Y_{11} = \sqrt{3/4\pi}\,(y, z, x)`,
:math:`Y_{2,-2} = \tfrac12\sqrt{15/\pi}\,xy`, ... .  They are orthonormal on the unit sphere,
:math:`\int Y_{lm} Y_{l'm'} d\Omega = \delta_{ll'}\delta_{mm'}`.

The Condon-Shortley phase :math:`(-1)^m` lives in the *complex* harmonics
:math:`Y_l^m = (-1)^m N_l^m P_l^m(\cos\theta) e^{im\phi}` (m >= 0, :math:`Y_l^{-m} = (-1)^m
\overline{Y_l^m}`), the convention of scipy, sympy and Sakurai.  The change of basis
:func:`complex_to_real_matrix` removes it again: :math:`Y_{l m} = \frac{1}{\sqrt2}(Y_l^{-m} +
(-1)^m Y_l^m)` for m > 0 and :math:`Y_{l m} = \frac{i}{\sqrt2}(Y_l^{m} - (-1)^m Y_l^{-m})` for
m < 0.

Storage: an array ``(..., (l_max + 1)**2)`` with :math:`Y_{lm}` at index ``l*l + l + m``.

Computation: in Cartesian form, :math:`P_l^m(z) = (1 - z^2)^{m/2} \bar P_l^m(z)` with a
polynomial :math:`\bar P_l^m` and :math:`\sin^m\theta\,(\cos m\phi, \sin m\phi) =
(\mathrm{Re}, \mathrm{Im})(x + iy)^m`, so the harmonics are polynomials in (x, y, z) on the sphere,
evaluated with the three-term recursion below and smooth everywhere (also at the poles, which
matters for gradients).  No scipy is used.

e3nn (0.4) uses the same functions in a rotated frame: its polar axis is y, and
``e3nn.o3.spherical_harmonics(l, r)`` equals ours at the cyclically permuted point
``(z, x, y)``.  See :func:`e3nn_to_course_basis`.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

__all__ = [
    "E3NN_AXIS_PERMUTATION",
    "associated_legendre",
    "complex_spherical_harmonics",
    "complex_to_real_matrix",
    "e3nn_to_course_basis",
    "irrep_slice",
    "real_spherical_harmonics",
    "real_spherical_harmonics_torch",
    "sphere_quadrature",
]

E3NN_AXIS_PERMUTATION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""Rotation ``Q`` with ``Q @ (x, y, z) = (z, x, y)``: ``e3nn_Y_l(r) = course_Y_l(Q r)``."""


def irrep_slice(l: int) -> slice:
    """Columns of degree ``l`` in an array of harmonics: ``slice(l*l, (l+1)**2)``."""
    return slice(l * l, (l + 1) ** 2)


def _double_factorial_odd(m: int) -> float:
    """(2m - 1)!! = 1 * 3 * ... * (2m - 1), with (-1)!! = 1."""
    out = 1.0
    for k in range(1, 2 * m, 2):
        out *= k
    return out


def associated_legendre(l_max: int, x: np.ndarray, condon_shortley: bool = False) -> np.ndarray:
    r"""Associated Legendre functions :math:`P_l^m(x)` for ``0 <= m <= l <= l_max`` by recursion.

    Recursion (no Condon-Shortley phase):

    * :math:`P_m^m(x) = (2m-1)!!\,(1-x^2)^{m/2}`,
    * :math:`P_{m+1}^m(x) = (2m+1)\,x\,P_m^m(x)`,
    * :math:`(l-m) P_l^m(x) = (2l-1)\,x\,P_{l-1}^m(x) - (l+m-1) P_{l-2}^m(x)`.

    Parameters
    ----------
    l_max : int
    x : array (...)
        Arguments in ``[-1, 1]`` (``cos(theta)``).
    condon_shortley : bool
        If True multiply by :math:`(-1)^m` (scipy's ``lpmv`` convention).

    Returns
    -------
    array (..., l_max + 1, l_max + 1)
        ``P[..., l, m]``; entries with ``m > l`` are zero.
    """
    x = np.asarray(x, dtype=np.float64)
    s = np.sqrt(np.clip(1.0 - x * x, 0.0, None))
    out = np.zeros(x.shape + (l_max + 1, l_max + 1))
    for m in range(l_max + 1):
        p_mm = _double_factorial_odd(m) * s**m
        out[..., m, m] = p_mm
        if m + 1 <= l_max:
            out[..., m + 1, m] = (2 * m + 1) * x * p_mm
        for l in range(m + 2, l_max + 1):
            out[..., l, m] = (
                (2 * l - 1) * x * out[..., l - 1, m] - (l + m - 1) * out[..., l - 2, m]
            ) / (l - m)
    if condon_shortley:
        out = out * ((-1.0) ** np.arange(l_max + 1))
    return out


def _normalisation(l: int, m: int) -> float:
    """N_l^m = sqrt((2l+1)/(4 pi) (l-m)!/(l+m)!) (exact ratio of factorials, then float)."""
    ratio = math.factorial(l - m) / math.factorial(l + m)
    return math.sqrt((2 * l + 1) / (4.0 * math.pi) * ratio)


def _real_sh_cartesian(l_max: int, x, y, z, stack):
    """Shared numpy/torch implementation on unit-vector components x, y, z (same shapes)."""
    # A_m + i B_m = (x + i y)^m = sin^m(theta) (cos m phi + i sin m phi)
    cos_parts, sin_parts = [x * 0 + 1.0], [x * 0]
    for m in range(1, l_max + 1):
        a, b = cos_parts[-1], sin_parts[-1]
        cos_parts.append(x * a - y * b)
        sin_parts.append(x * b + y * a)
    # reduced Legendre polynomials Pbar_l^m(z) = P_l^m(z) / (1 - z^2)^{m/2}
    pbar: dict[tuple[int, int], object] = {}
    for m in range(l_max + 1):
        pbar[m, m] = x * 0 + _double_factorial_odd(m)
        if m + 1 <= l_max:
            pbar[m + 1, m] = (2 * m + 1) * z * pbar[m, m]
        for l in range(m + 2, l_max + 1):
            pbar[l, m] = ((2 * l - 1) * z * pbar[l - 1, m] - (l + m - 1) * pbar[l - 2, m]) / (l - m)
    columns = []
    for l in range(l_max + 1):
        for m in range(-l, l + 1):
            k = abs(m)
            n = _normalisation(l, k)
            if m > 0:
                columns.append(math.sqrt(2.0) * n * pbar[l, k] * cos_parts[k])
            elif m < 0:
                columns.append(math.sqrt(2.0) * n * pbar[l, k] * sin_parts[k])
            else:
                columns.append(n * pbar[l, 0])
    return stack(columns)


def real_spherical_harmonics(l_max: int, vectors: np.ndarray) -> np.ndarray:
    r"""The course's real spherical harmonics :math:`Y_{lm}(\hat r)` for all ``l <= l_max``.

    See the module docstring for the exact formula (no Condon-Shortley phase,
    ``Y_1 = sqrt(3/4pi) (y, z, x)``, orthonormal on the unit sphere).

    Parameters
    ----------
    l_max : int
    vectors : array (..., 3)
        Cartesian vectors (x, y, z), any non-zero length; only the direction is used.

    Returns
    -------
    array (..., (l_max + 1)**2)
        :math:`Y_{lm}` at index ``l*l + l + m``.
    """
    v = np.asarray(vectors, dtype=np.float64)
    if v.shape[-1] != 3:
        raise ValueError(
            f"real_spherical_harmonics: vectors must have shape (..., 3), got {v.shape}"
        )
    norm = np.linalg.norm(v, axis=-1)
    if np.any(norm == 0):
        raise ValueError("real_spherical_harmonics: zero vector has no direction")
    u = v / norm[..., None]
    return _real_sh_cartesian(
        l_max, u[..., 0], u[..., 1], u[..., 2], lambda cols: np.stack(cols, axis=-1)
    )


def real_spherical_harmonics_torch(l_max: int, vectors):
    """Differentiable torch version of :func:`real_spherical_harmonics` (same convention).

    Implemented with the same Cartesian recursion in torch operations (not by calling e3nn), so
    autograd gives exact gradients, also at the poles.  Works in the dtype and on the device of
    ``vectors`` (use float64 for checks).

    Parameters
    ----------
    l_max : int
    vectors : torch.Tensor (..., 3)
        Non-zero vectors; they are normalised inside (the gradient of a zero vector is NaN).

    Returns
    -------
    torch.Tensor (..., (l_max + 1)**2)
    """
    import torch

    u = vectors / torch.linalg.norm(vectors, dim=-1, keepdim=True)
    return _real_sh_cartesian(
        l_max, u[..., 0], u[..., 1], u[..., 2], lambda cols: torch.stack(cols, dim=-1)
    )


@cache
def _complex_to_real(l: int) -> np.ndarray:
    U = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    r2 = 1.0 / math.sqrt(2.0)
    for m in range(-l, l + 1):
        row = m + l
        if m > 0:
            U[row, -m + l] = r2
            U[row, m + l] = (-1) ** m * r2
        elif m == 0:
            U[row, l] = 1.0
        else:
            U[row, m + l] = 1j * r2
            U[row, -m + l] = -1j * (-1) ** m * r2
    U.setflags(write=False)
    return U


def complex_to_real_matrix(l: int) -> np.ndarray:
    r"""Unitary ``U`` (2l+1, 2l+1) with ``Y_real_l = U @ Y_complex_l``.

    Rows are indexed by the real ``m`` (``m + l``), columns by the complex ``m`` (``m + l``).
    The complex harmonics carry the Condon-Shortley phase (scipy, sympy, Sakurai):

    * m > 0: :math:`Y_{lm} = (Y_l^{-m} + (-1)^m Y_l^m)/\sqrt2`,
    * m = 0: :math:`Y_{l0} = Y_l^0`,
    * m < 0: :math:`Y_{lm} = i (Y_l^{m} - (-1)^m Y_l^{-m})/\sqrt2`.

    Returns
    -------
    complex array (2l+1, 2l+1), unitary (a copy; safe to modify).
    """
    return _complex_to_real(l).copy()


def complex_spherical_harmonics(l_max: int, vectors: np.ndarray) -> np.ndarray:
    """Complex harmonics with the Condon-Shortley phase, index ``l*l + l + m``.

    Obtained from the real ones through ``Y_complex_l = U^H Y_real_l``; equals
    ``scipy.special.sph_harm_y(l, m, theta, phi)``.
    """
    real = real_spherical_harmonics(l_max, vectors)
    out = np.zeros(real.shape, dtype=np.complex128)
    for l in range(l_max + 1):
        U = _complex_to_real(l)
        out[..., irrep_slice(l)] = real[..., irrep_slice(l)] @ U.conj()
    return out


def sphere_quadrature(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre (in cos theta) x uniform (in phi) grid on the unit sphere.

    Integrates every polynomial in (x, y, z) of total degree ``<= degree`` exactly (up to
    rounding): ``sum(w * f(points)) = integral of f over the sphere``; the weights sum to 4 pi.

    Returns
    -------
    points : array (n, 3)
    weights : array (n,)
    """
    n_theta = degree // 2 + 1
    n_phi = degree + 1
    cos_theta, w_theta = np.polynomial.legendre.leggauss(n_theta)
    phi = 2.0 * np.pi * np.arange(n_phi) / n_phi
    ct, ph = np.meshgrid(cos_theta, phi, indexing="ij")
    st = np.sqrt(1.0 - ct**2)
    points = np.stack([st * np.cos(ph), st * np.sin(ph), ct], axis=-1).reshape(-1, 3)
    weights = (w_theta[:, None] * np.full(n_phi, 2.0 * np.pi / n_phi)[None, :]).reshape(-1)
    return points, weights


@cache
def _e3nn_to_course(l: int) -> np.ndarray:
    from acecourse.maths.wigner import wigner_D

    B = wigner_D(l, E3NN_AXIS_PERMUTATION.T)
    B.setflags(write=False)
    return B


def e3nn_to_course_basis(l: int, normalization: str = "integral") -> np.ndarray:
    r"""Matrix ``B`` (2l+1, 2l+1) with ``course_Y_l(r) = B @ e3nn_Y_l(r)``.

    Derivation: e3nn 0.4's harmonics are ours in a frame whose polar axis is y,
    ``e3nn_Y_l(r) = course_Y_l(Q r)`` with the cyclic permutation ``Q (x, y, z) = (z, x, y)``
    (a proper rotation, :data:`E3NN_AXIS_PERMUTATION`).  Hence
    ``e3nn_Y_l = D_l(Q) course_Y_l`` and ``B = D_l(Q)^T = D_l(Q^T)``, an orthogonal matrix.
    For ``l = 1``, e3nn's components are ``sqrt(3/4pi) (x, y, z)`` of the input vector and ours
    are ``sqrt(3/4pi) (y, z, x)``, so ``B_1`` is the permutation matrix
    ``[[0, 1, 0], [0, 0, 1], [1, 0, 0]]``.  For ``l >= 2`` ``B_l`` is *not* a signed permutation
    (e.g. our ``Y_20 ∝ 3z^2 - 1`` is ``-1/2`` e3nn's ``Y_20 ∝ 3y^2 - 1`` plus
    ``sqrt(3)/2`` its ``∝ z^2 - x^2`` component).

    Parameters
    ----------
    l : int
    normalization : {"integral", "component"}
        The ``normalization`` that e3nn was called with (``normalize=True`` assumed).
        "component" harmonics are ``sqrt(4 pi)`` times the "integral" ones.

    Returns
    -------
    array (2l+1, 2l+1), float64
    """
    B = _e3nn_to_course(l).copy()
    if normalization == "integral":
        return B
    if normalization == "component":
        return B / math.sqrt(4.0 * math.pi)
    raise ValueError(
        f"e3nn_to_course_basis: normalization must be 'integral' or 'component', got {normalization!r}"
    )
