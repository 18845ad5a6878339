"""How many independent product-basis functions MACE has: group characters versus U's rank."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

__all__ = ["independent_couplings", "symmetric_coupling_count"]


def _so3_character(l: int, theta: np.ndarray) -> np.ndarray:
    """Character of the rotation by ``theta`` in the irrep ``l``: ``1 + 2 sum_k cos(k theta)``."""
    return 1.0 + 2.0 * sum(np.cos(k * theta) for k in range(1, l + 1))


def _power_sum_cycle_index(nu: int) -> list[tuple[float, list[int]]]:
    """Cycle index of the symmetric group S_nu: ``(weight, cycle lengths)`` for each cycle type."""
    counts: dict[tuple[int, ...], int] = {}
    for perm in itertools.permutations(range(nu)):
        seen, lengths = set(), []
        for start in range(nu):
            if start in seen:
                continue
            length, k = 0, start
            while k not in seen:
                seen.add(k)
                k = perm[k]
                length += 1
            lengths.append(length)
        key = tuple(sorted(lengths))
        counts[key] = counts.get(key, 0) + 1
    return [(c / math.factorial(nu), list(k)) for k, c in counts.items()]


def symmetric_coupling_count(l_max: int, nu: int, L: int, parity: int | None = None,
                             num_points: int = 4001) -> int:
    r"""Multiplicity of the O(3) irrep ``(L, parity)`` in the symmetric power :math:`S^\nu V`.

    ``V = 0e + 1o + 2e + ... `` (one copy of each spherical-harmonic irrep up to ``l_max``, parity
    :math:`(-1)^l`): the space of one channel of the one-particle basis :math:`A_{i,k\,lm}`.  The
    result is the number of linearly independent degree-``nu`` polynomials in ``A`` that transform
    as ``(L, parity)``, i.e. the number of product-basis functions per channel and element.  It is
    computed from characters (Weyl integration over the rotation angle, both cosets of O(3)),
    independently of any Clebsch–Gordan coefficient; ``parity`` defaults to :math:`(-1)^L`.
    """
    parity = (-1) ** L if parity is None else parity
    theta = np.linspace(0.0, np.pi, num_points)
    weight = (1.0 - np.cos(theta)) / np.pi  # class density of the rotation angle on SO(3)
    total = 0.0
    for inversion in (False, True):
        def chi_v(power: int, inv: bool = inversion) -> np.ndarray:
            # character of g^power on V, g = (inversion) * rotation(theta)
            return sum(
                ((-1) ** (l * power) if inv else 1) * _so3_character(l, power * theta)
                for l in range(l_max + 1)
            )

        sym = sum(w * np.prod([chi_v(c) for c in cycles], axis=0)
                  for w, cycles in _power_sum_cycle_index(nu))
        integrand = sym * _so3_character(L, theta) * (parity if inversion else 1) * weight
        total += np.trapezoid(integrand, theta) / 2.0
    count = round(total)
    if abs(total - count) > 1e-6:
        raise RuntimeError(f"character integral {total} is not an integer: raise num_points")
    return count


def independent_couplings(u: torch.Tensor) -> int:
    """Rank of the part of ``U[M, i_1..i_nu, eta]`` that is symmetric in ``i_1..i_nu``.

    Only that part survives the contraction with ``A_{i_1} ... A_{i_nu}`` (a symmetric tensor), so
    the rank is the number of distinct functions the ``eta`` weights can produce.
    """
    nu = u.ndim - 2
    perms = list(itertools.permutations(range(1, nu + 1)))
    sym = sum(u.permute(0, *p, nu + 1) for p in perms) / len(perms)
    return int(torch.linalg.matrix_rank(sym.reshape(-1, u.shape[-1])).item())
