r"""Independent counts of the rotation invariants, to check the basis of :mod:`acecourse.ace.basis`.

Two counts that do not use coupling coefficients at all:

* :func:`character_invariant_count` — representation theory.  The products of ν entries of the
  atomic base span the symmetric power :math:`\mathrm{Sym}^\nu W` of
  :math:`W = \bigoplus_{k} \bigoplus_{l \le l_{\max}} V_l`.  The number of invariants is the
  multiplicity of the trivial irrep, the integral of the character over SO(3) with the Weyl
  measure, :math:`\frac{1}{\pi}\int_0^\pi \chi(\theta)\,(1-\cos\theta)\,d\theta`, where the
  character of a rotation by :math:`\theta` on :math:`V_l` is
  :math:`\chi_l(\theta) = 1 + 2\sum_{m=1}^{l}\cos m\theta` and the character of a symmetric power
  follows from Newton's identity :math:`h_\nu = \frac{1}{\nu}\sum_{j=1}^{\nu} p_j h_{\nu-j}`,
  :math:`p_j(\theta) = \chi_W(j\theta)`.  Reflections: the inversion acts on :math:`V_l` as
  :math:`(-1)^l`, so O(3) invariants are the SO(3) invariants of the products with an even number
  of odd-:math:`l` factors.
* :func:`numerical_rank` — linear algebra: evaluate the features on many random environments and
  count the singular values of the (column-normalised) design matrix above a tolerance.
"""

from __future__ import annotations

import numpy as np


def _character_of_sum(theta: np.ndarray, n_channels: int, ls: list[int]) -> np.ndarray:
    m = np.arange(1, max(ls, default=0) + 1)
    chi = np.zeros_like(theta)
    for l in ls:
        chi = chi + 1.0 + 2.0 * np.cos(np.outer(theta, m[:l])).sum(axis=1)
    return n_channels * chi


def _symmetric_power_characters(
    theta: np.ndarray, n_channels: int, ls: list[int], nu: int
) -> list[np.ndarray]:
    """Characters h_0..h_nu of Sym^a(W) for a = 0..nu (Newton's identity)."""
    p = [None] + [_character_of_sum(j * theta, n_channels, ls) for j in range(1, nu + 1)]
    h = [np.ones_like(theta)]
    for a in range(1, nu + 1):
        h.append(sum(p[j] * h[a - j] for j in range(1, a + 1)) / a)
    return h


def character_invariant_count(
    nu: int, n_channels: int, l_max: int, reflections: bool = True
) -> int:
    r"""Number of linearly independent invariants of correlation order ν, from characters.

    Parameters
    ----------
    nu
        Correlation order (number of atomic-base factors).
    n_channels
        Number of channels ``k`` (species × radial functions) entering the products.
    l_max
        Maximal degree of the spherical harmonics in the products.
    reflections
        ``True``: invariants of O(3) (rotations and inversion); ``False``: of SO(3) only.

    Returns
    -------
    int
        The multiplicity of the trivial representation in :math:`\mathrm{Sym}^\nu W`.
    """
    n_theta = 4 * (nu * l_max + 2)  # the integrand is a trigonometric polynomial: exact quadrature
    theta = 2 * np.pi * (np.arange(n_theta) + 0.5) / n_theta
    weight = (1.0 - np.cos(theta)) / n_theta  # (1/2π)∫_0^{2π} … dθ, symmetric integrand
    even = [l for l in range(l_max + 1) if l % 2 == 0]
    odd = [l for l in range(l_max + 1) if l % 2 == 1]
    if not reflections:
        h = _symmetric_power_characters(theta, n_channels, even + odd, nu)
        chi = h[nu]
    else:
        h_even = _symmetric_power_characters(theta, n_channels, even, nu)
        h_odd = _symmetric_power_characters(theta, n_channels, odd, nu)
        chi = sum(h_even[nu - b] * h_odd[b] for b in range(0, nu + 1, 2))
    value = float(np.sum(chi * weight))
    count = round(value)
    if abs(value - count) > 1e-6:
        raise ArithmeticError(
            f"character integral {value} is not an integer: increase the quadrature"
        )
    return count


def numerical_rank(features: np.ndarray, rtol: float = 1e-8) -> int:
    """Numerical rank of a design matrix ``(n_environments, n_features)``.

    Columns are scaled to unit norm first (identically zero columns are dropped), then singular
    values above ``rtol`` times the largest are counted.
    """
    norms = np.linalg.norm(features, axis=0)
    scale = norms.max(initial=0.0)
    cols = features[:, norms > 1e-12 * max(scale, 1e-300)]
    if cols.shape[1] == 0:
        return 0
    cols = cols / np.linalg.norm(cols, axis=0)
    s = np.linalg.svd(cols, compute_uv=False)
    return int(np.sum(s > rtol * s[0]))
