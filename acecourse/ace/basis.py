r"""Atomic base :math:`A_{i,knlm}` and the symmetric rotation-invariant basis :math:`B`.

The neighbour density of atom :math:`i`, resolved by the element :math:`z` of the neighbours,

.. math:: \rho_i^{z}(\mathbf{r}) = \sum_{j \ne i,\ Z_j = z} \delta(\mathbf{r} - \mathbf{r}_{ij}),

projected on the one-particle basis :math:`\phi_{nlm}(\mathbf{r}) = R_n(r) Y_l^m(\hat{\mathbf{r}})`
gives the *atomic base* (the "density trick": one sum over neighbours)

.. math:: A_{i,k lm} = \sum_{j \ne i} \delta_{z Z_j}\, R_n(r_{ij})\, Y_l^m(\hat{\mathbf{r}}_{ij}),
   \qquad k = (z, n).

The channel index ``k = z * n_max + n`` combines the neighbour element ``z`` (position in the
species tuple) and the radial index ``n`` (0-based).  Products of ν atomic-base entries, contracted
with the coupling tensors of :mod:`acecourse.ace.coupling`, are the invariants :math:`B`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from acecourse.ace._harmonics import spherical_harmonics
from acecourse.ace.coupling import (
    coupling_paths,
    independent_couplings,
    is_parity_even,
    path_tensor,
)
from acecourse.ace.radial import bessel_radial_basis


def atomic_base_from_neighbours(
    vectors: torch.Tensor,
    neighbour_species: torch.Tensor,
    n_species: int,
    n_max: int,
    l_max: int,
    r_cut: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Atomic base of environments given as neighbour vectors.

    Parameters
    ----------
    vectors
        :math:`\mathbf{r}_{ij}` (Å), shape ``(..., M, 3)`` for ``M`` neighbours.
    neighbour_species
        Integer species index (0 … ``n_species``-1) of each neighbour, shape ``(..., M)``.
    n_species, n_max, l_max, r_cut
        Number of elements, radial functions, maximal degree and cutoff (Å).
    weights
        Optional ``(..., M)`` factor per neighbour (0 masks a slot, e.g. the self pair).

    Returns
    -------
    torch.Tensor
        :math:`A_{k, lm}` of shape ``(..., n_species * n_max, (l_max + 1)**2)``, index
        ``k = z * n_max + n`` and ``l*l + l + m``.
    """
    r = torch.linalg.norm(vectors, dim=-1)
    radial = bessel_radial_basis(r, n_max, r_cut)  # (..., M, n)
    if weights is not None:
        radial = radial * weights.unsqueeze(-1)
    ylm = spherical_harmonics(l_max, vectors)  # (..., M, L2)
    onehot = torch.nn.functional.one_hot(neighbour_species, n_species).to(vectors.dtype)
    base = torch.einsum("...jn,...jl,...jz->...znl", radial, ylm, onehot)
    return base.reshape(base.shape[:-3] + (n_species * n_max, (l_max + 1) ** 2))


def atomic_base_of_molecules(
    positions: torch.Tensor,
    species: torch.Tensor,
    n_species: int,
    n_max: int,
    l_max: int,
    r_cut: float,
) -> torch.Tensor:
    """Atomic base of every atom of a batch of molecules (all pairs, no periodic images).

    Parameters
    ----------
    positions
        Cartesian positions (Å), shape ``(B, N, 3)`` (or ``(N, 3)``).
    species
        Species index of each atom, shape ``(N,)``.

    Returns
    -------
    torch.Tensor
        Shape ``(B, N, n_species * n_max, (l_max + 1)**2)`` (``(N, …)`` for unbatched input).
    """
    n_atoms = positions.shape[-2]
    vectors = positions.unsqueeze(-3) - positions.unsqueeze(-2)  # [..., i, j] = r_j - r_i
    self_pair = torch.eye(n_atoms, dtype=torch.bool, device=positions.device).unsqueeze(-1)
    # keep the self pair away from r = 0 (its weight is zero): no NaN in autograd
    safe = torch.tensor([2.0 * r_cut, 0.0, 0.0], dtype=positions.dtype, device=positions.device)
    vectors = torch.where(self_pair, safe, vectors)
    weights = (~self_pair.squeeze(-1)).to(positions.dtype)
    neighbour_species = species.expand(vectors.shape[:-1])
    return atomic_base_from_neighbours(
        vectors, neighbour_species, n_species, n_max, l_max, r_cut, weights
    )


@dataclass
class _Group:
    ls: tuple[int, ...]
    pattern: tuple[int, ...]
    channels: list[tuple[int, ...]] = field(default_factory=list)
    tensors: np.ndarray | None = None  # (r, d_1, ..., d_nu)


def _pattern(labels: tuple) -> tuple[int, ...]:
    return tuple(labels.index(x) for x in labels)


class InvariantBasis:
    r"""The rotation-, reflection- and permutation-invariant ACE basis up to correlation order ν.

    Parameters
    ----------
    n_channels
        Number of channels ``k`` of the atomic base (``n_species * n_max``).
    n_max
        Radial functions per species in the atomic base.
    orders
        ``{nu: (n_max_nu, l_max_nu)}``: for each correlation order, the channels with radial index
        ``n < n_max_nu`` and degrees ``l <= l_max_nu`` enter its products.
    n_species
        Number of neighbour species (channels ``k = z * n_max + n``).
    reduce
        ``True`` (default): keep only linearly independent, permutation-symmetrised couplings.
        ``False``: the *naive* basis, one feature per sorted tuple and coupling path, without
        symmetrisation (some of its features vanish identically or are linearly dependent).

    Notes
    -----
    The product :math:`\prod_t A_{k_t l_t m_t}` is symmetric in its factors, so only sorted tuples
    of labels :math:`(l_t, k_t)` are used.  For each sorted tuple with :math:`\sum_t l_t` even, the
    coupling paths are symmetrised over the permutations of equal labels and reduced to a linearly
    independent set (:func:`acecourse.ace.coupling.independent_couplings`).
    """

    def __init__(
        self, n_species: int, n_max: int, orders: dict[int, tuple[int, int]], reduce: bool = True
    ):
        self.n_species, self.n_max, self.reduce = n_species, n_max, reduce
        self.orders = dict(sorted(orders.items()))
        self.l_max = max(l for _, l in self.orders.values())
        self.groups: list[_Group] = []
        self.labels: list[tuple[int, tuple[tuple[int, int], ...], int]] = []
        self.naive_count = {nu: 0 for nu in self.orders}
        for nu, (n_max_nu, l_max_nu) in self.orders.items():
            if n_max_nu > n_max:
                raise ValueError(
                    f"order {nu} asks for n_max={n_max_nu} > n_max={n_max} of the atomic base"
                )
            channels = [z * n_max + n for z in range(n_species) for n in range(n_max_nu)]
            labels = [(l, k) for l in range(l_max_nu + 1) for k in channels]
            by_key: dict[tuple, _Group] = {}
            for tup in itertools.combinations_with_replacement(labels, nu):
                ls = tuple(l for l, _ in tup)
                if not is_parity_even(ls):
                    continue
                paths = coupling_paths(ls)
                if not paths:
                    continue
                self.naive_count[nu] += len(paths)
                pattern = _pattern(tup)
                key = (ls, pattern)
                if key not in by_key:
                    by_key[key] = _Group(ls, pattern)
                by_key[key].channels.append(tuple(k for _, k in tup))
            for (ls, pattern), group in by_key.items():
                if reduce:
                    _, tensors = independent_couplings(ls, pattern)
                else:
                    tensors = np.stack([path_tensor(ls, p) for p in coupling_paths(ls)])
                if len(tensors) == 0:
                    continue
                # deterministic sign: largest entry of each tensor positive
                flat = tensors.reshape(len(tensors), -1)
                signs = np.sign(flat[np.arange(len(flat)), np.abs(flat).argmax(axis=1)])
                signs[signs == 0] = 1.0
                group.tensors = tensors * signs.reshape((-1,) + (1,) * nu)
                self.groups.append(group)
                for ch in group.channels:
                    for j in range(len(tensors)):
                        self.labels.append((nu, tuple(zip(ls, ch)), j))
        self._torch_cache: dict = {}

    @property
    def n_features(self) -> int:
        """Number of linearly independent invariants (length of the feature vector)."""
        return len(self.labels)

    def count_by_order(self) -> dict[int, int]:
        """Number of independent invariants for each correlation order ν."""
        counts = {nu: 0 for nu in self.orders}
        for nu, _, _ in self.labels:
            counts[nu] += 1
        return counts

    def _tensors(
        self, dtype: torch.dtype, device: torch.device
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        key = (dtype, device)
        if key not in self._torch_cache:
            self._torch_cache[key] = [
                (
                    torch.as_tensor(np.array(g.channels), device=device),
                    torch.as_tensor(g.tensors, dtype=dtype, device=device),
                )
                for g in self.groups
            ]
        return self._torch_cache[key]

    def with_derivative(
        self, base: torch.Tensor, base_derivative: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Invariants and their derivatives by the product rule (forward mode, by hand).

        Parameters
        ----------
        base
            Atomic base ``(..., n_channels, (l_max+1)**2)``.
        base_derivative
            Its derivative along ``X`` directions, ``(..., n_channels, (l_max+1)**2, X)`` (e.g.
            ``X = 3N`` Cartesian coordinates).

        Returns
        -------
        (values, derivative)
            ``(..., n_features)`` and ``(..., n_features, X)``.
        """
        letters = "abcdefgh"
        values, derivatives = [], []
        for group, (channels, tensors) in zip(self.groups, self._tensors(base.dtype, base.device)):
            nu = len(group.ls)
            slices = [slice(l * l, (l + 1) * (l + 1)) for l in group.ls]
            factors = [base[..., channels[:, t], slices[t]] for t in range(nu)]
            spec = ",".join(f"...T{letters[t]}" for t in range(nu)) + ",r" + letters[:nu]
            value = torch.einsum(spec + "->...Tr", *factors, tensors)
            deriv = 0
            if nu == 1:
                dfactor = base_derivative[..., channels[:, 0], slices[0], :]
                deriv = torch.einsum("...Tax,ra->...Trx", dfactor, tensors)
            for t in range(nu if nu > 1 else 0):
                others = [f"...T{letters[s]}" for s in range(nu) if s != t]
                partial_spec = ",".join(others + ["r" + letters[:nu]]) + f"->...T{letters[t]}r"
                partial = torch.einsum(
                    partial_spec, *[factors[s] for s in range(nu) if s != t], tensors
                )
                dfactor = base_derivative[..., channels[:, t], slices[t], :]
                deriv = deriv + torch.einsum(
                    f"...T{letters[t]}r,...T{letters[t]}x->...Trx", partial, dfactor
                )
            values.append(value.reshape(value.shape[:-2] + (-1,)))
            derivatives.append(deriv.reshape(deriv.shape[:-3] + (-1, deriv.shape[-1])))
        return torch.cat(values, dim=-1), torch.cat(derivatives, dim=-2)

    def __call__(self, base: torch.Tensor) -> torch.Tensor:
        """Evaluate the invariants from the atomic base ``(..., n_channels, (l_max+1)**2)``.

        Returns
        -------
        torch.Tensor
            Shape ``(..., n_features)``, in the order of :attr:`labels`.
        """
        letters = "abcdefgh"
        out = []
        for group, (channels, tensors) in zip(self.groups, self._tensors(base.dtype, base.device)):
            nu = len(group.ls)
            factors = []
            for t, l in enumerate(group.ls):
                factors.append(base[..., channels[:, t], l * l : (l + 1) * (l + 1)])  # (..., T, d)
            spec = (
                ",".join(f"...T{letters[t]}" for t in range(nu)) + ",r" + letters[:nu] + "->...Tr"
            )
            values = torch.einsum(spec, *factors, tensors)
            out.append(values.reshape(values.shape[:-2] + (-1,)))
        return torch.cat(out, dim=-1)
