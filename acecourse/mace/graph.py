"""Graphs for MACE: a brute-force neighbour list and the equivalent mace-torch batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from ase import Atoms

__all__ = ["atoms_to_inputs", "mace_batch", "neighbour_graph"]


def neighbour_graph(positions: torch.Tensor, cutoff: float) -> torch.Tensor:
    """All ordered pairs ``(j, i)``, ``j != i``, with ``|r_i - r_j| < cutoff`` (no periodicity).

    Parameters
    ----------
    positions
        ``(n, 3)`` in Å.
    cutoff
        Radius in Å.

    Returns
    -------
    torch.Tensor
        ``edge_index`` of shape ``(2, n_edges)``: row 0 the neighbour (sender), row 1 the centre
        (receiver), sorted by sender then receiver as ``ase.neighborlist`` does.
    """
    with torch.no_grad():
        d = torch.cdist(positions, positions)
        mask = (d < cutoff) & ~torch.eye(len(positions), dtype=torch.bool, device=positions.device)
        sender, receiver = mask.nonzero(as_tuple=True)
    return torch.stack([sender, receiver])


def atoms_to_inputs(
    atoms: Atoms, atomic_numbers: Sequence[int], cutoff: float, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(positions, element, edge_index)`` for :class:`acecourse.mace.model.CourseMACE`."""
    positions = torch.tensor(atoms.get_positions(), dtype=dtype)
    index = {z: k for k, z in enumerate(atomic_numbers)}
    element = torch.tensor([index[int(z)] for z in atoms.numbers], dtype=torch.long)
    return positions, element, neighbour_graph(positions, cutoff)


def mace_batch(
    atoms_list: Sequence[Atoms], atomic_numbers: Sequence[int], cutoff: float
) -> dict[str, torch.Tensor]:
    """A mace-torch input batch (``AtomicData`` collated by its ``DataLoader``), as a dict.

    Built with the current default dtype; ``mace.data.get_neighborhood`` makes the edges.
    """
    from mace import data as mace_data
    from mace.tools import AtomicNumberTable, torch_geometric

    table = AtomicNumberTable(list(atomic_numbers))
    items = [
        mace_data.AtomicData.from_config(
            mace_data.config_from_atoms(atoms), z_table=table, cutoff=cutoff
        )
        for atoms in atoms_list
    ]
    loader = torch_geometric.dataloader.DataLoader(items, batch_size=len(items), shuffle=False)
    return next(iter(loader)).to_dict()
