r"""Clebsch-Gordan coefficients and the real coupling tensors of the course.

Complex basis
-------------
:func:`clebsch_gordan` returns :math:`\langle l_1 m_1 l_2 m_2 | L M\rangle` in the
Condon-Shortley convention (the one of sympy, Sakurai and Varshalovich), computed from Racah's
closed formula with exact integers (:class:`fractions.Fraction`):

.. math::

    \langle l_1 m_1 l_2 m_2 | L M\rangle = \delta_{M, m_1+m_2}
    \sqrt{\frac{(2L+1)(L+l_1-l_2)!(L-l_1+l_2)!(l_1+l_2-L)!}{(l_1+l_2+L+1)!}}
    \sqrt{(L+M)!(L-M)!(l_1-m_1)!(l_1+m_1)!(l_2-m_2)!(l_2+m_2)!}
    \sum_k \frac{(-1)^k}{k!(l_1+l_2-L-k)!(l_1-m_1-k)!(l_2+m_2-k)!(L-l_2+m_1+k)!(L-l_1-m_2+k)!},

the sum running over the integers k for which every factorial argument is non-negative.  The
square of the result is an exact rational; only the final square root is taken in floating point.

Real basis
----------
With ``U_l = complex_to_real_matrix(l)`` (``Y_real = U Y_complex``) the coupled product
:math:`F_M = \sum C_{m_1 m_2 M} Y_{l_1}^{m_1}(r) Y_{l_2}^{m_2}(s)` transforms like
:math:`Y_L^M`, so in the real basis

.. math:: C^{\mathrm{real}}_{ijk} = \sum_{abc} \overline{U_{l_1, ia}}\,\overline{U_{l_2, jb}}\,
          U_{L, kc}\, C_{abc}.

This tensor is real when :math:`l_1 + l_2 + L` is even and purely imaginary when it is odd;
in the odd case :func:`real_coupling_tensor` multiplies it by :math:`-i`.  It is then normalised
to unit Frobenius norm (like ``e3nn.o3.wigner_3j``; the complex tensor has norm
:math:`\sqrt{2L+1}`).  It satisfies, for every rotation R,

``einsum('ijk,i,j->k', C, Y_l1(R r), Y_l2(R s)) == D_L(R) @ einsum('ijk,i,j->k', C, Y_l1(r), Y_l2(s))``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache

import numpy as np

from acecourse.maths.spherical_harmonics import complex_to_real_matrix

__all__ = [
    "clebsch_gordan",
    "clebsch_gordan_squared_exact",
    "clebsch_gordan_tensor",
    "real_coupling_tensor",
    "triangle",
]


def triangle(l1: int, l2: int, L: int) -> bool:
    """True if ``|l1 - l2| <= L <= l1 + l2`` (the triangle rule)."""
    return abs(l1 - l2) <= L <= l1 + l2


@cache
def clebsch_gordan_squared_exact(
    l1: int, m1: int, l2: int, m2: int, L: int, M: int
) -> tuple[int, Fraction]:
    """Sign and exact square of the Clebsch-Gordan coefficient (Racah's formula).

    Returns
    -------
    sign : int in {-1, 0, 1}
    square : Fraction, the exact value of the coefficient squared.
    """
    if M != m1 + m2 or not triangle(l1, l2, L):
        return 0, Fraction(0)
    if abs(m1) > l1 or abs(m2) > l2 or abs(M) > L:
        return 0, Fraction(0)
    f = math.factorial
    prefactor = Fraction(
        (2 * L + 1) * f(L + l1 - l2) * f(L - l1 + l2) * f(l1 + l2 - L),
        f(l1 + l2 + L + 1),
    ) * (f(L + M) * f(L - M) * f(l1 - m1) * f(l1 + m1) * f(l2 - m2) * f(l2 + m2))
    total = Fraction(0)
    k_min = max(0, l2 - L - m1, l1 - L + m2)
    k_max = min(l1 + l2 - L, l1 - m1, l2 + m2)
    for k in range(k_min, k_max + 1):
        denominator = (
            f(k)
            * f(l1 + l2 - L - k)
            * f(l1 - m1 - k)
            * f(l2 + m2 - k)
            * f(L - l2 + m1 + k)
            * f(L - l1 - m2 + k)
        )
        total += Fraction((-1) ** k, denominator)
    if total == 0:
        return 0, Fraction(0)
    return (1 if total > 0 else -1), prefactor * total * total


def clebsch_gordan(l1: int, m1: int, l2: int, m2: int, L: int, M: int) -> float:
    r"""Clebsch-Gordan coefficient :math:`\langle l_1 m_1 l_2 m_2 | L M\rangle` (Condon-Shortley).

    Equal to ``sympy.physics.quantum.cg.CG(l1, m1, l2, m2, L, M).doit()``.  Zero unless
    ``M = m1 + m2``, ``|l1 - l2| <= L <= l1 + l2`` and ``|m| <= l`` for each pair.

    Parameters
    ----------
    l1, m1, l2, m2, L, M : int

    Returns
    -------
    float
    """
    sign, square = clebsch_gordan_squared_exact(int(l1), int(m1), int(l2), int(m2), int(L), int(M))
    if sign == 0:
        return 0.0
    # the square is exact; p / q is correctly rounded by Python, the square root adds one rounding
    p, q = square.numerator, square.denominator
    return sign * math.sqrt(p / q)


@cache
def _cg_tensor(l1: int, l2: int, L: int) -> np.ndarray:
    C = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * L + 1))
    if triangle(l1, l2, L):
        for m1 in range(-l1, l1 + 1):
            for m2 in range(-l2, l2 + 1):
                M = m1 + m2
                if abs(M) <= L:
                    C[m1 + l1, m2 + l2, M + L] = clebsch_gordan(l1, m1, l2, m2, L, M)
    C.setflags(write=False)
    return C


def clebsch_gordan_tensor(l1: int, l2: int, L: int) -> np.ndarray:
    """All coefficients ``C[m1 + l1, m2 + l2, M + L]`` of :func:`clebsch_gordan` (complex basis).

    Returns
    -------
    array (2l1+1, 2l2+1, 2L+1); zero if the triangle rule fails.
    """
    return _cg_tensor(int(l1), int(l2), int(L)).copy()


@cache
def _real_coupling(l1: int, l2: int, L: int) -> np.ndarray:
    if not triangle(l1, l2, L):
        raise ValueError(f"real_coupling_tensor: ({l1}, {l2}, {L}) violates |l1-l2| <= L <= l1+l2")
    C = _cg_tensor(l1, l2, L)
    U1, U2, UL = (complex_to_real_matrix(l) for l in (l1, l2, L))
    T = np.einsum("ia,jb,kc,abc->ijk", U1.conj(), U2.conj(), UL, C)
    if (l1 + l2 + L) % 2 == 1:
        T = -1j * T  # purely imaginary for odd l1 + l2 + L
    if np.abs(T.imag).max() > 1e-12:
        raise RuntimeError("real_coupling_tensor: the transformed tensor is not real (bug)")
    real = T.real / np.linalg.norm(T.real)
    real.setflags(write=False)
    return real


def real_coupling_tensor(l1: int, l2: int, L: int) -> np.ndarray:
    """Real coupling tensor ``C[i, j, k]`` (2l1+1, 2l2+1, 2L+1) in the course's real basis.

    Built from the complex Clebsch-Gordan tensor with ``complex_to_real_matrix`` (see the module
    docstring), multiplied by ``-i`` when ``l1 + l2 + L`` is odd so that it is real, and
    normalised to Frobenius norm 1.  Equivariant:
    ``einsum('ijk,i,j->k', C, D_l1(R) x, D_l2(R) y) = D_L(R) @ einsum('ijk,i,j->k', C, x, y)``.
    It equals ``e3nn.o3.wigner_3j(l1, l2, L)`` after e3nn's change of basis
    (``e3nn_to_course_basis``) up to an overall sign.  Cached.
    """
    return _real_coupling(int(l1), int(l2), int(L)).copy()
