"""A NequIP-style equivariant interaction layer and a small interatomic potential built from it.

One interaction (Batzner et al., 2022; Thomas et al., 2018) updates node features
``h_i`` (irreps ``irreps_in``) from the neighbours ``j`` within the cutoff:

.. math::

    m_i = \\frac{1}{\\sqrt{\\bar n}} \\sum_{j \\in \\mathcal N(i)}
          R(r_{ij}) \\, \\big( W h_j \\big) \\otimes Y(\\hat r_{ij}),
    \\qquad
    h_i' = \\mathrm{Gate}\\big( W' m_i + \\mathrm{SC}(h_i, z_i) \\big),

with ``r_ij = r_j - r_i``, ``Y`` the spherical harmonics up to ``l_max`` (e3nn, component
normalisation), ``R`` a multilayer perceptron of the Bessel-times-cutoff embedding of ``|r_ij|``
that outputs one weight per path and channel of the "uvu" tensor product, ``W, W'`` equivariant
linear maps (:class:`e3nn.o3.Linear`), ``SC`` a self-connection (a tensor product of ``h_i`` with
the one-hot species ``z_i``), ``\\bar n`` the average number of neighbours, and ``Gate`` e3nn's
gated nonlinearity (SiLU on scalars, sigmoid gates multiplying the ``l > 0`` features).
Every piece commutes with rotations and reflections, so the layer is O(3)-equivariant; it only
uses relative positions (translation invariant) and sums over neighbours (permutation
equivariant).
"""

from __future__ import annotations

import torch
from e3nn import nn as e3nn_nn
from e3nn import o3

from acecourse.nn.graph import MoleculeBatch, radius_graph
from acecourse.nn.radial import RadialEmbedding

ACTIVATIONS = {1: torch.nn.functional.silu, -1: torch.tanh}
GATE_ACTIVATIONS = {1: torch.sigmoid, -1: torch.tanh}


def hidden_irreps(l_max: int, multiplicities: int | list[int]) -> o3.Irreps:
    """Hidden features ``m_0 x 0e + m_1 x 1o + m_2 x 2e + ...`` up to ``l_max`` (parity ``(-1)^l``).

    ``multiplicities`` is one number for all ``l`` or a list of ``l_max + 1`` numbers.
    """
    if isinstance(multiplicities, int):
        multiplicities = [multiplicities] * (l_max + 1)
    if len(multiplicities) != l_max + 1:
        raise ValueError(f"give {l_max + 1} multiplicities for l_max={l_max}, got {multiplicities}")
    return o3.Irreps([(m, (l, (-1) ** l)) for l, m in enumerate(multiplicities) if m > 0])


def uvu_instructions(
    irreps_in: o3.Irreps, irreps_sh: o3.Irreps, irreps_target: o3.Irreps
) -> tuple[o3.Irreps, list[tuple]]:
    """All paths ``(l_in x l_sh -> l_out)`` with ``l_out`` in ``irreps_target``, channel-wise ("uvu").

    Returns the (unsimplified) output irreps, one block per path, and e3nn instructions
    ``(i_in, i_sh, i_out, "uvu", True)``.
    """
    targets = {ir for _, ir in irreps_target}
    irreps_mid, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in targets:
                    instructions.append((i, j, len(irreps_mid), "uvu", True))
                    irreps_mid.append((mul, ir_out))
    return o3.Irreps(irreps_mid), instructions


class InteractionBlock(torch.nn.Module):
    """One NequIP-style equivariant interaction with a gated nonlinearity (see module docstring).

    Parameters
    ----------
    irreps_in : node features entering the layer
    irreps_out : node features leaving it (after the gate)
    irreps_sh : spherical harmonics of the edge directions, e.g. ``"0e+1o+2e"``
    n_species : number of chemical species (one-hot size)
    n_basis : size of the radial embedding
    radial_hidden : width of the radial MLP's hidden layer
    avg_num_neighbors : ``\\bar n`` in the normalisation of the neighbour sum
    """

    def __init__(
        self,
        irreps_in: str | o3.Irreps,
        irreps_out: str | o3.Irreps,
        irreps_sh: str | o3.Irreps,
        n_species: int,
        n_basis: int = 8,
        radial_hidden: int = 16,
        avg_num_neighbors: float = 8.0,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.avg_num_neighbors = float(avg_num_neighbors)

        scalars = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in self.irreps_out if ir.l > 0])
        gates = o3.Irreps([(m, "0e") for m, _ in gated])
        self.gate = e3nn_nn.Gate(
            scalars,
            [ACTIVATIONS[ir.p] for _, ir in scalars],
            gates,
            [GATE_ACTIVATIONS[ir.p] for _, ir in gates],
            gated,
        )
        irreps_pre_gate = self.gate.irreps_in

        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        irreps_mid, instructions = uvu_instructions(self.irreps_in, self.irreps_sh, irreps_pre_gate)
        self.tensor_product = o3.TensorProduct(
            self.irreps_in,
            self.irreps_sh,
            irreps_mid,
            instructions,
            shared_weights=False,
            internal_weights=False,
        )
        self.radial = e3nn_nn.FullyConnectedNet(
            [n_basis, radial_hidden, self.tensor_product.weight_numel], torch.nn.functional.silu
        )
        self.linear_down = o3.Linear(irreps_mid, irreps_pre_gate)
        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps_in, o3.Irreps(f"{n_species}x0e"), irreps_pre_gate
        )

    def forward(
        self,
        features: torch.Tensor,
        species_one_hot: torch.Tensor,
        edge_index: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
    ) -> torch.Tensor:
        """Node features ``(n_atoms, irreps_in.dim)`` -> ``(n_atoms, irreps_out.dim)``.

        ``edge_index`` is ``(2, n_edges)`` (source j, destination i); ``edge_sh`` and
        ``edge_radial`` are the spherical harmonics and radial embedding of each edge.
        """
        source, destination = edge_index
        weights = self.radial(edge_radial)
        mixed = self.linear_up(features)
        messages = self.tensor_product(mixed[source], edge_sh, weights)
        aggregated = torch.zeros(
            features.shape[0],
            messages.shape[1],
            dtype=messages.dtype,
            device=messages.device,
        ).index_add_(0, destination, messages)
        aggregated = aggregated / self.avg_num_neighbors**0.5
        self_part = self.self_connection(features, species_one_hot)
        update = self.linear_down(aggregated) + self_part
        return self.gate(update)


class EquivariantPotential(torch.nn.Module):
    """A small NequIP-style potential: embedding, ``n_layers`` interactions, per-atom energy readout.

    The total energy of a molecule is ``E = sum_i (scale * e_i + shift)`` where ``e_i`` is the
    scalar readout of atom ``i`` and ``shift`` (eV per atom), ``scale`` (eV) are fixed from the
    training set (see :func:`acecourse.nn.trainer.energy_shift_and_scale`).

    Parameters
    ----------
    species : atomic numbers the model knows, e.g. ``(1, 6, 8)``
    l_max : largest degree ``L`` of the hidden features and, unless ``edge_l_max`` is given,
        of the edge spherical harmonics (``l_max = 0``: an invariant model that sees only
        distances)
    multiplicities : channels per degree (one int, or a list of ``l_max + 1``)
    n_layers, cutoff (Å), n_basis, radial_hidden, avg_num_neighbors : see :class:`InteractionBlock`
    edge_l_max : largest degree of the edge spherical harmonics ``Y(r_ij)``; ``None`` (default)
        ties it to ``l_max``.  With ``l_max = 0`` the harmonics of degree > 0 open no path (the
        scalar features can only make ``l > 0`` outputs from them, which a scalar model drops).
    """

    def __init__(
        self,
        species: tuple[int, ...] = (1, 6, 8),
        l_max: int = 1,
        multiplicities: int | list[int] = 16,
        n_layers: int = 2,
        cutoff: float = 5.0,
        n_basis: int = 8,
        radial_hidden: int = 16,
        avg_num_neighbors: float = 8.0,
        shift: float = 0.0,
        scale: float = 1.0,
        edge_l_max: int | None = None,
    ) -> None:
        super().__init__()
        self.species = tuple(int(z) for z in species)
        self.l_max = int(l_max)
        self.cutoff = float(cutoff)
        n_species = len(self.species)
        self.irreps_hidden = hidden_irreps(l_max, multiplicities)
        self.edge_l_max = self.l_max if edge_l_max is None else int(edge_l_max)
        self.irreps_sh = o3.Irreps.spherical_harmonics(self.edge_l_max)
        n_scalars = self.irreps_hidden.count("0e")
        self.embedding = o3.Linear(f"{n_species}x0e", f"{n_scalars}x0e")
        self.radial_embedding = RadialEmbedding(cutoff, n_basis)
        layers = []
        irreps = o3.Irreps(f"{n_scalars}x0e")
        for _ in range(n_layers):
            layers.append(
                InteractionBlock(
                    irreps,
                    self.irreps_hidden,
                    self.irreps_sh,
                    n_species,
                    n_basis,
                    radial_hidden,
                    avg_num_neighbors,
                )
            )
            irreps = layers[-1].irreps_out
        self.layers = torch.nn.ModuleList(layers)
        self.readout = o3.Linear(irreps, "0e")
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def atomic_energies(self, batch: MoleculeBatch) -> torch.Tensor:
        """Per-atom energies ``scale * e_i + shift`` (eV), shape ``(n_atoms,)``."""
        positions = batch.positions
        edge_index = radius_graph(positions, batch.batch, self.cutoff)
        source, destination = edge_index
        vectors = positions[source] - positions[destination]  # r_ij = r_j - r_i
        edge_sh = o3.spherical_harmonics(
            self.irreps_sh, vectors, normalize=True, normalization="component"
        )
        edge_radial = self.radial_embedding(vectors.norm(dim=-1))
        one_hot = torch.nn.functional.one_hot(batch.species, len(self.species)).to(positions.dtype)
        features = self.embedding(one_hot)
        for layer in self.layers:
            features = layer(features, one_hot, edge_index, edge_sh, edge_radial)
        return self.readout(features).squeeze(-1) * self.scale + self.shift

    def forward(self, batch: MoleculeBatch) -> torch.Tensor:
        """Total energies ``(n_graphs,)`` in eV."""
        atomic = self.atomic_energies(batch)
        return torch.zeros(batch.n_graphs, dtype=atomic.dtype).index_add_(0, batch.batch, atomic)

    def energy_and_forces(
        self, batch: MoleculeBatch, training: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies ``(n_graphs,)`` eV and forces ``-dE/dr`` ``(n_atoms, 3)`` eV/Å.

        With ``training=True`` the force graph is kept (``create_graph``) so a loss on forces can
        be differentiated with respect to the weights.
        """
        positions = batch.positions.detach().requires_grad_(True)
        moved = MoleculeBatch(positions, batch.species, batch.batch, batch.n_graphs)
        energies = self(moved)
        (gradient,) = torch.autograd.grad(
            energies.sum(), positions, create_graph=training, retain_graph=training
        )
        return energies, -gradient

    def molecule_energy(
        self, positions: torch.Tensor, atomic_numbers: torch.Tensor
    ) -> torch.Tensor:
        """Energy (eV, a 0-d tensor) of one molecule: the signature ``fn(positions, species)`` of
        :func:`acecourse.equivariance.check_equivariance` (``species`` as atomic numbers)."""
        from acecourse.nn.graph import species_index

        batch = MoleculeBatch(
            positions,
            species_index(atomic_numbers, self.species),
            torch.zeros(len(positions), dtype=torch.long),
            1,
        )
        return self(batch)[0]


def count_parameters(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
