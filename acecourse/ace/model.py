r"""Linear ACE model for molecules: :math:`E = \sum_i \mathbf{c}_{Z_i} \cdot \mathbf{B}_i`.

The descriptor of a structure is, for every central element :math:`Z`, the sum of the invariant
features :math:`\mathbf{B}_i` over the atoms :math:`i` of that element, so that the energy is
linear in the coefficients: :math:`E = \sum_Z \mathbf{c}_Z \cdot \sum_{i: Z_i = Z}\mathbf{B}_i`.
Forces are :math:`\mathbf{F}_a = -\partial E/\partial\mathbf{r}_a = -\sum_Z \mathbf{c}_Z\cdot
\partial(\sum_i \mathbf{B}_i)/\partial\mathbf{r}_a`, also linear in the coefficients; the
Jacobian of the descriptor is computed with forward-mode automatic differentiation
(:func:`torch.func.jacfwd`) in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from acecourse.ace.basis import InvariantBasis, atomic_base_of_molecules


class ACEDescriptor:
    """Per-element sums of the ACE invariants of a molecule, and their Jacobian.

    Parameters
    ----------
    species
        Atomic numbers of the elements, e.g. ``(1, 6, 8)``; the order fixes the species index.
    r_cut
        Cutoff radius (Å).
    orders
        ``{nu: (n_max_nu, l_max_nu)}`` for each correlation order ν (body order ν + 1).

    Examples
    --------
    >>> d = ACEDescriptor((1, 6, 8), 5.0, {1: (6, 0), 2: (4, 3), 3: (2, 2)})
    >>> d.n_features  # doctest: +SKIP
    """

    def __init__(self, species: Sequence[int], r_cut: float, orders: dict[int, tuple[int, int]]):
        self.species = tuple(int(z) for z in species)
        self.r_cut = float(r_cut)
        self.orders = dict(sorted(orders.items()))
        self.n_max = max(n for n, _ in self.orders.values())
        self.l_max = max(l for _, l in self.orders.values())
        self.basis = InvariantBasis(len(self.species), self.n_max, self.orders)

    @property
    def n_atom_features(self) -> int:
        """Number of invariants per atom."""
        return self.basis.n_features

    @property
    def n_features(self) -> int:
        """Length of the structure descriptor: invariants × central elements."""
        return self.basis.n_features * len(self.species)

    def species_index(self, numbers: Sequence[int]) -> torch.Tensor:
        """Map atomic numbers to species indices (0 … n_species-1)."""
        lookup = {z: k for k, z in enumerate(self.species)}
        try:
            return torch.tensor([lookup[int(z)] for z in numbers])
        except KeyError as err:
            raise ValueError(
                f"element Z={err.args[0]} is not in the descriptor's species {self.species}"
            ) from None

    def atom_features(self, positions: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Invariants :math:`B_i` of every atom, shape ``(..., N, n_atom_features)``."""
        base = atomic_base_of_molecules(
            positions, species, len(self.species), self.n_max, self.l_max, self.r_cut
        )
        return self.basis(base)

    def structure_features(self, positions: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-element sums of the invariants, shape ``(..., n_features)`` (element-major)."""
        per_atom = self.atom_features(positions, species)
        onehot = torch.nn.functional.one_hot(species, len(self.species)).to(per_atom.dtype)
        summed = torch.einsum("...if,iz->...zf", per_atom, onehot)
        return summed.reshape(summed.shape[:-2] + (-1,))

    def features_and_jacobian(
        self, positions: torch.Tensor, species: torch.Tensor, chunk_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Descriptor and its derivative with respect to the positions.

        Parameters
        ----------
        positions
            ``(B, N, 3)`` positions (Å), float64.
        species
            ``(N,)`` species indices.
        chunk_size
            Frames per chunk (memory); all at once when ``None``.

        Notes
        -----
        The Jacobian of the atomic base (small: ``N × K × (l_max+1)² × 3N`` per frame) comes from
        :func:`torch.func.jacfwd`; the invariants are differentiated by the product rule in
        :meth:`InvariantBasis.with_derivative`, which is several times cheaper than pushing
        ``3N`` tangents through every contraction.

        Returns
        -------
        (features, jacobian)
            ``(B, n_features)`` and ``(B, n_features, N, 3)`` (per Å).
        """

        n_atoms = positions.shape[-2]

        def base_of(pos: torch.Tensor) -> torch.Tensor:
            return atomic_base_of_molecules(
                pos, species, len(self.species), self.n_max, self.l_max, self.r_cut
            )

        feats, jacs = [], []
        step = chunk_size or len(positions)
        onehot = torch.nn.functional.one_hot(species, len(self.species)).to(positions.dtype)
        for start in range(0, len(positions), step):
            pos = positions[start : start + step]
            base = base_of(pos)  # (b, N, K, L2)
            dbase = torch.func.vmap(torch.func.jacfwd(base_of))(pos)  # (b, N, K, L2, N, 3)
            dbase = dbase.reshape(dbase.shape[:-2] + (3 * n_atoms,))
            values, derivative = self.basis.with_derivative(base, dbase)
            feats.append(torch.einsum("bif,iz->bzf", values, onehot).flatten(1))
            jac = torch.einsum("bifx,iz->bzfx", derivative, onehot).flatten(1, 2)
            jacs.append(jac.reshape(jac.shape[:2] + (n_atoms, 3)))
        return torch.cat(feats), torch.cat(jacs)


def frames_to_arrays(frames) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions (B, N, 3) Å, atomic numbers (N,), energies (B,) eV, forces (B, N, 3) eV/Å.

    All frames must be the same molecule (same atoms in the same order), as in rMD17.
    """
    numbers = frames[0].numbers
    if any(len(f) != len(numbers) or (f.numbers != numbers).any() for f in frames):
        raise ValueError(
            "frames_to_arrays needs frames of one molecule with the atoms in one order"
        )
    positions = np.stack([f.positions for f in frames])
    energies = np.array([f.info["REF_energy"] for f in frames])
    forces = np.stack([f.arrays["REF_forces"] for f in frames])
    return positions, np.array(numbers), energies, forces
