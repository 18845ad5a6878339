"""From ASE frames to the batches mace-torch's models eat, fast.

mace-torch represents a batch as a dict of tensors built by ``mace.data.AtomicData`` and its
``torch_geometric`` collation.  For rMD17 ethanol every frame has the same atoms in the same order
and, with a 5 Å cutoff, the same 72 directed edges (all pairs of the 9 atoms).  Then a batch is
fully determined by *which* frames it holds: :class:`StaticBatches` collates one template batch per
batch size and afterwards only gathers positions, energies and forces on the device, which removes
the data loader from the training loop.  Datasets whose graphs differ fall back to mace-torch's
``DataLoader`` through :class:`LoaderBatches`; both produce identical dicts (a unit test checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from ase import Atoms
from mace import data as mace_data
from mace.tools import torch_geometric
from mace.tools.utils import AtomicNumberTable

from acecourse.data.rmd17 import ENERGY_KEY, FORCES_KEY

Z_TABLE = AtomicNumberTable([1, 6, 8])
"""Elements of ethanol, in the order of the one-hot node attributes."""


def to_atomic_data(frames: Sequence[Atoms], r_max: float) -> list:
    """Convert ASE frames (with ``REF_energy``/``REF_forces``) to mace ``AtomicData``."""
    keys = mace_data.KeySpecification(
        info_keys={"energy": ENERGY_KEY}, arrays_keys={"forces": FORCES_KEY}
    )
    configs = [mace_data.config_from_atoms(a, key_specification=keys) for a in frames]
    return [mace_data.AtomicData.from_config(c, z_table=Z_TABLE, cutoff=r_max) for c in configs]


def same_graph(dataset: Sequence) -> bool:
    """True when all graphs share species, edges and zero periodic shifts (static batching OK)."""
    first = dataset[0]
    return all(
        torch.equal(item.edge_index, first.edge_index)  # False for another shape too
        and torch.equal(item.node_attrs, first.node_attrs)
        and not item.shifts.any()
        for item in dataset
    )


class _Batches:
    """What both batch providers share: a dataset on a device in a float type, a length, and an
    (optionally shuffled) pass over batches."""

    indices_on_device = False  # batch() gathers with the indices on the device

    def __init__(self, dataset: Sequence, device: torch.device, dtype: torch.dtype):
        self.dataset = dataset
        self.device = device
        self.dtype = dtype

    def _collate(self, items: Sequence) -> dict[str, torch.Tensor]:
        """mace-torch's collation of ``items`` on the device, floats in ``dtype``."""
        batch = torch_geometric.batch.Batch.from_data_list(list(items)).to(self.device).to_dict()
        return {k: v.to(self.dtype) if torch.is_floating_point(v) else v for k, v in batch.items()}

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def iterate(
        self, batch_size: int, shuffle: bool, generator: torch.Generator | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        if self.indices_on_device:
            # once per pass, so that no batch's indices wait on a blocking host-to-device copy
            # (which would stop the host from queuing the next step while the GPU runs this one)
            order = order.to(self.device)
        for start in range(0, n, batch_size):
            yield self.batch(order[start : start + batch_size])


class StaticBatches(_Batches):
    """Batches of a dataset whose graphs are all identical, gathered on the device.

    Parameters
    ----------
    dataset
        mace ``AtomicData`` items with identical graphs (see :func:`same_graph`).
    device, dtype
        Where and in which float type the batches live.
    """

    indices_on_device = True

    def __init__(self, dataset: Sequence, device: torch.device, dtype: torch.dtype):
        if not same_graph(dataset):
            raise ValueError("StaticBatches needs identical graphs; use LoaderBatches instead")
        super().__init__(dataset, device, dtype)
        self.positions = torch.stack([d.positions for d in dataset]).to(device, dtype)
        self.energy = torch.stack([d.energy.reshape(()) for d in dataset]).to(device, dtype)
        self.forces = torch.stack([d.forces for d in dataset]).to(device, dtype)
        self._templates: dict[int, dict[str, torch.Tensor]] = {}

    def template(self, size: int) -> dict[str, torch.Tensor]:
        if size not in self._templates:
            self._templates[size] = self._collate(self.dataset[:size])
        return self._templates[size]

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch holding frames ``indices`` (a 1D long tensor on any device)."""
        idx = indices.to(self.device)
        out = dict(self.template(int(idx.numel())))
        out["positions"] = self.positions[idx].reshape(-1, 3)
        out["energy"] = self.energy[idx]
        out["forces"] = self.forces[idx].reshape(-1, 3)
        return out


class LoaderBatches(_Batches):
    """General batches through mace-torch's data loader (graphs may differ)."""

    def batch(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._collate([self.dataset[int(i)] for i in indices])


def make_batches(dataset: Sequence, device: torch.device, dtype: torch.dtype):
    """:class:`StaticBatches` when every graph is the same, else :class:`LoaderBatches`."""
    if same_graph(dataset):
        return StaticBatches(dataset, device, dtype)
    return LoaderBatches(dataset, device, dtype)


def energy_statistics(frames: Sequence[Atoms]) -> dict[str, float]:
    """Mean energy per atom (eV) and RMS of the force components (eV/Å) of a training set."""
    energies = np.array([a.info[ENERGY_KEY] for a in frames])
    n_atoms = np.array([len(a) for a in frames])
    forces = np.concatenate([a.arrays[FORCES_KEY].ravel() for a in frames])
    return {
        "mean_energy_per_atom": float(np.mean(energies / n_atoms)),
        "rms_force": float(np.sqrt(np.mean(forces**2))),
    }


def atomic_reference_energies(frames: Sequence[Atoms], method: str) -> np.ndarray:
    """Per-element reference energies E0 (eV) in the order of :data:`Z_TABLE`.

    ``mean_per_atom``: every element gets the training set's mean energy per atom (the MACE
    paper's per-atom shift).  ``least_squares``: the minimum-norm least-squares fit of energies on
    element counts (what ``--E0s=average`` does); for a single composition the counts matrix has
    rank one and the split between elements is arbitrary.  ``zero``: no reference.
    """
    zs = list(Z_TABLE.zs)
    if method == "zero":
        return np.zeros(len(zs))
    if method == "mean_per_atom":
        return np.full(len(zs), energy_statistics(frames)["mean_energy_per_atom"])
    if method == "least_squares":
        counts = np.array([[np.sum(a.numbers == z) for z in zs] for a in frames], dtype=float)
        energies = np.array([a.info[ENERGY_KEY] for a in frames])
        solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        return solution
    raise ValueError(f"unknown E0 method {method!r}")
