"""Molecules as graphs: concatenated atoms, a ``batch`` vector, and edges within a cutoff."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms


@dataclass
class MoleculeBatch:
    """Several molecules as one graph.

    Attributes
    ----------
    positions : (n_atoms, 3) Å
    species : (n_atoms,) index into the model's species list (not the atomic number)
    batch : (n_atoms,) which molecule each atom belongs to
    n_graphs : number of molecules
    energies : (n_graphs,) reference energies in eV, or None
    forces : (n_atoms, 3) reference forces in eV/Å, or None
    """

    positions: torch.Tensor
    species: torch.Tensor
    batch: torch.Tensor
    n_graphs: int
    energies: torch.Tensor | None = None
    forces: torch.Tensor | None = None

    @property
    def atoms_per_graph(self) -> torch.Tensor:
        return torch.bincount(self.batch, minlength=self.n_graphs)


def species_index(numbers: np.ndarray | torch.Tensor, species: tuple[int, ...]) -> torch.Tensor:
    """Map atomic numbers to indices into ``species`` (e.g. H, C, O -> 0, 1, 2)."""
    numbers = torch.as_tensor(np.asarray(numbers), dtype=torch.long)
    table = torch.full((max(species) + 1,), -1, dtype=torch.long)
    table[torch.tensor(species)] = torch.arange(len(species))
    if numbers.max() >= len(table) or (table[numbers] < 0).any():
        raise ValueError(f"atomic numbers {sorted(set(numbers.tolist()))} not all in {species}")
    return table[numbers]


def batch_from_atoms(
    frames: list[Atoms],
    species: tuple[int, ...],
    dtype: torch.dtype = torch.float64,
    energy_key: str = "REF_energy",
    forces_key: str = "REF_forces",
) -> MoleculeBatch:
    """Concatenate ASE ``Atoms`` (with reference labels if present) into a :class:`MoleculeBatch`."""
    positions = torch.as_tensor(np.concatenate([a.positions for a in frames]), dtype=dtype)
    numbers = np.concatenate([a.numbers for a in frames])
    batch = torch.repeat_interleave(
        torch.arange(len(frames)), torch.tensor([len(a) for a in frames])
    )
    energies = forces = None
    if all(energy_key in a.info for a in frames):
        energies = torch.tensor([a.info[energy_key] for a in frames], dtype=dtype)
    if all(forces_key in a.arrays for a in frames):
        forces = torch.as_tensor(
            np.concatenate([a.arrays[forces_key] for a in frames]), dtype=dtype
        )
    return MoleculeBatch(
        positions, species_index(numbers, species), batch, len(frames), energies, forces
    )


def concatenate(batches: list[MoleculeBatch]) -> MoleculeBatch:
    """Join batches into one (molecule indices are renumbered)."""
    offsets = np.cumsum([0] + [b.n_graphs for b in batches[:-1]])
    has_labels = all(b.energies is not None and b.forces is not None for b in batches)
    return MoleculeBatch(
        torch.cat([b.positions for b in batches]),
        torch.cat([b.species for b in batches]),
        torch.cat([b.batch + int(o) for b, o in zip(batches, offsets, strict=True)]),
        int(sum(b.n_graphs for b in batches)),
        torch.cat([b.energies for b in batches]) if has_labels else None,
        torch.cat([b.forces for b in batches]) if has_labels else None,
    )


def radius_graph(positions: torch.Tensor, batch: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Edges ``(2, n_edges)`` (source, destination) between distinct atoms of the same molecule
    closer than ``cutoff`` (Å).  Both directions are included.  The edge list is found from
    detached positions; distances are recomputed differentiably by the model."""
    with torch.no_grad():
        same = batch[:, None] == batch[None, :]
        distances = torch.cdist(positions, positions)
        mask = same & (distances < cutoff)
        mask.fill_diagonal_(False)
        source, destination = torch.nonzero(mask, as_tuple=True)
    return torch.stack([source, destination])
