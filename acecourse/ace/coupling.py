r"""Generalised Clebsch–Gordan coupling of ν spherical-harmonic indices to a rotation invariant.

A product basis function of correlation order :math:`\nu` is a product
:math:`\prod_{\xi=1}^{\nu} A_{k_\xi l_\xi m_\xi}` (``k`` labels a radial/element channel).  A rotation
invariant is obtained by contracting the :math:`m_\xi` indices with a *coupling tensor*
:math:`\mathcal{C}_{m_1\dots m_\nu}` built from Clebsch–Gordan coefficients, coupling from the
left: :math:`(l_1, l_2) \to L_2`, :math:`(L_2, l_3) \to L_3`, …, and finally
:math:`(L_{\nu-1}, l_\nu) \to 0`, which forces :math:`L_{\nu-1} = l_\nu`.  The intermediate
degrees :math:`(L_2, \dots, L_{\nu-1})` label the *coupling paths*.

Reflection (inversion :math:`\mathbf{r}\to-\mathbf{r}`) multiplies :math:`Y_l^m` by
:math:`(-1)^l`, so an invariant of O(3) needs :math:`\sum_\xi l_\xi` even.

When some :math:`(k_\xi, l_\xi)` are equal, the product is symmetric under permuting them, so only the
part of :math:`\mathcal{C}` symmetric under those permutations survives: some paths vanish and
others become linearly dependent.  :func:`independent_couplings` symmetrises the path tensors and
keeps an orthonormal basis of their span (an SVD), which is the count of linearly independent
invariants.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from acecourse.ace._harmonics import coupling_tensor


def coupling_paths(ls: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Intermediate degrees ``(L_2, …, L_{ν-1})`` of all left-to-right couplings of ``ls`` to 0.

    Parity is not checked here; see :func:`is_parity_even`.
    """
    nu = len(ls)
    if nu == 1:
        return [()] if ls[0] == 0 else []
    if nu == 2:
        return [()] if ls[0] == ls[1] else []
    paths = []

    # intermediate L_2 ... L_{nu-1}; the last one must equal l_nu
    def extend(prefix: tuple[int, ...], current: int, t: int) -> None:
        if t == nu - 1:
            if current == ls[-1]:
                paths.append(prefix[:-1] if prefix else prefix)
            return
        for big_l in range(abs(current - ls[t]), current + ls[t] + 1):
            extend(prefix + (big_l,), big_l, t + 1)

    extend((), ls[0], 1)
    return paths


def is_parity_even(ls: tuple[int, ...]) -> bool:
    """True when :math:`\\sum_\\xi l_\\xi` is even, i.e. the product is invariant under inversion."""
    return sum(ls) % 2 == 0


@cache
def path_tensor(ls: tuple[int, ...], path: tuple[int, ...]) -> np.ndarray:
    r"""Coupling tensor of one path, shape ``(2l_1+1, …, 2l_\nu+1)``.

    ``einsum`` of it with :math:`A_{l_1}, \dots, A_{l_\nu}` is rotation invariant.  For
    :math:`\nu = 3` the path is empty and the tensor is ``coupling_tensor(l1, l2, l3)``; the last
    coupling to 0 is the dot product :math:`\sum_M X_M A_{l_\nu M}`, which in a real orthonormal
    basis is invariant because the Wigner matrices are orthogonal.
    """
    nu = len(ls)
    if nu == 1:
        return np.ones((1,))
    if nu == 2:
        return np.eye(2 * ls[0] + 1) / np.sqrt(2 * ls[0] + 1)
    degrees = (ls[0],) + tuple(path) + (ls[-1],)  # L_1 = l_1, ..., L_{nu-1} = l_nu
    # running tensor with indices (m_1, ..., m_t, M_t)
    tensor = np.eye(2 * ls[0] + 1)
    for t in range(1, nu - 1):
        cg = coupling_tensor(degrees[t - 1], ls[t], degrees[t])  # (M_{t-1}, m_t, M_t)
        tensor = np.tensordot(tensor, cg, axes=([-1], [0]))
    # tensor indices (m_1, ..., m_{nu-1}, M_{nu-1});
    # contracting M_{nu-1} with m_nu is the identity
    return tensor


def _permutations_fixing(labels: tuple) -> list[tuple[int, ...]]:
    """All permutations of positions that leave the tuple ``labels`` unchanged."""
    nu = len(labels)
    return [
        p
        for p in itertools.permutations(range(nu))
        if all(labels[p[i]] == labels[i] for i in range(nu))
    ]


@cache
def independent_couplings(
    ls: tuple[int, ...], pattern: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis of the symmetrised coupling tensors of one sorted tuple.

    Parameters
    ----------
    ls
        Degrees ``(l_1, …, l_ν)`` (sorted together with the channels).
    pattern
        Equality pattern of the full labels ``(k_t, l_t)``: position ``t`` gets the index of the
        first position with the same label, e.g. ``(0, 0, 2)`` when the first two are equal.

    Returns
    -------
    (transform, tensors)
        ``transform`` of shape ``(r, n_paths)`` maps the path invariants to ``r`` linearly
        independent ones; ``tensors`` of shape ``(r, 2l_1+1, …)`` are their (orthonormal,
        symmetrised) coupling tensors.  ``r`` may be smaller than the number of paths.
    """
    paths = coupling_paths(ls)
    if not paths:
        shape = tuple(2 * l + 1 for l in ls)
        return np.zeros((0, 0)), np.zeros((0,) + shape)
    tensors = np.stack([path_tensor(ls, p) for p in paths])
    perms = _permutations_fixing(pattern)
    sym = np.mean([tensors.transpose((0,) + tuple(1 + q for q in p)) for p in perms], axis=0)
    flat = sym.reshape(len(paths), -1)
    u, s, vt = np.linalg.svd(flat, full_matrices=False)
    rank = int(np.sum(s > 1e-10 * max(1.0, s.max(initial=0.0))))
    transform = (u[:, :rank] / s[:rank]).T  # (rank, n_paths): rows of vt = transform @ flat
    return transform, vt[:rank].reshape((rank,) + sym.shape[1:])
