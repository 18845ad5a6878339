"""The radial basis, the interaction layer and the potential are smooth and E(3) equivariant."""

import numpy as np
import pytest
import torch
from e3nn import o3

from acecourse.equivariance import assert_equivariant, check_equivariance, forces_from_energy
from acecourse.nn.graph import MoleculeBatch, radius_graph, species_index
from acecourse.nn.interaction import EquivariantPotential, InteractionBlock, hidden_irreps
from acecourse.nn.radial import PolynomialCutoff, RadialEmbedding

SPECIES = (1, 6, 8)


pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.fixture()
def molecule():
    generator = torch.Generator().manual_seed(3)
    positions = torch.randn(6, 3, generator=generator) * 1.2
    return positions, torch.tensor([6, 6, 8, 1, 1, 1])


def test_cutoff_is_smooth():
    cutoff = PolynomialCutoff(4.0)
    r = torch.tensor([0.0, 3.999999, 4.0, 4.5], requires_grad=True)
    u = cutoff(r)
    assert float(u[0]) == 1.0 and abs(float(u[1])) < 1e-12 and float(u[2]) == 0.0
    (du,) = torch.autograd.grad(u.sum(), r, create_graph=True)
    assert abs(float(du[1])) < 1e-8 and float(du[3]) == 0.0
    embedding = RadialEmbedding(4.0, n_basis=6)
    assert embedding(torch.tensor([1.0, 2.0])).shape == (2, 6)


def test_hidden_irreps():
    assert hidden_irreps(2, [8, 4, 2]) == o3.Irreps("8x0e+4x1o+2x2e")
    assert hidden_irreps(0, 5) == o3.Irreps("5x0e")


def test_interaction_block_vectors_are_equivariant(molecule):
    torch.manual_seed(0)
    block = InteractionBlock("4x0e", "4x0e+3x1o+2x2e", "0e+1o+2e", n_species=3)
    embedding = RadialEmbedding(5.0)

    def vector_features(positions, numbers):
        index = species_index(numbers, SPECIES)
        one_hot = torch.nn.functional.one_hot(index, 3).to(positions.dtype)
        edges = radius_graph(positions, torch.zeros(len(positions), dtype=torch.long), 5.0)
        vectors = positions[edges[0]] - positions[edges[1]]
        sh = o3.spherical_harmonics("0e+1o+2e", vectors, normalize=True, normalization="component")
        features = torch.cat([one_hot, one_hot[:, :1]], dim=1)  # 4 scalars per atom
        out = block(features, one_hot, edges, sh, embedding(vectors.norm(dim=-1)))
        return out

    errors = assert_equivariant(vector_features, *molecule, block.irreps_out, per_atom=True)
    assert max(errors.values()) < 1e-10


@pytest.mark.parametrize(("l_max", "edge_l_max"), [(0, None), (1, None), (2, None), (2, 1)])
def test_potential_energy_invariant_forces_equivariant(molecule, l_max, edge_l_max):
    torch.manual_seed(l_max)
    model = EquivariantPotential(
        l_max=l_max, multiplicities=4, shift=-2.0, scale=0.5, edge_l_max=edge_l_max
    )
    assert_equivariant(model.molecule_energy, *molecule, "0e", n_trials=2)
    assert_equivariant(forces_from_energy(model.molecule_energy), *molecule, "1o", n_trials=2)


def test_edge_degree_follows_feature_degree_unless_given():
    """Chapter 02/04's models tie the edge harmonics to L: tensor-product paths per layer."""

    models = {}  # each model built once (e3nn compiles every tensor product)

    def model_of(l_max, edge_l_max=None):
        if (l_max, edge_l_max) not in models:
            models[l_max, edge_l_max] = EquivariantPotential(
                l_max=l_max, multiplicities=2, edge_l_max=edge_l_max
            )
        return models[l_max, edge_l_max]

    def paths(l_max, edge_l_max=None):
        layers = model_of(l_max, edge_l_max).layers
        return [len(layer.tensor_product.instructions) for layer in layers]

    for l_max in (0, 1, 2):
        assert model_of(l_max).irreps_sh == o3.Irreps.spherical_harmonics(l_max)
    assert [paths(l_max) for l_max in (0, 1, 2)] == [[1, 1], [2, 4], [3, 11]]
    assert paths(2, edge_l_max=2) == paths(2) and paths(2, edge_l_max=1) == [2, 7]
    assert paths(1, edge_l_max=2) == [2, 5]
    assert paths(0, edge_l_max=2) == [1, 1]  # scalar features cannot use l > 0 harmonics


def test_non_equivariant_readout_is_caught(molecule):
    """Reading a vector component as an energy breaks invariance; the helper sees it."""
    torch.manual_seed(0)
    model = EquivariantPotential(l_max=1, multiplicities=4)
    layer = model.layers[0]

    def bad_energy(positions, numbers):
        index = species_index(numbers, SPECIES)
        one_hot = torch.nn.functional.one_hot(index, 3).to(positions.dtype)
        edges = radius_graph(positions, torch.zeros(len(positions), dtype=torch.long), 5.0)
        vectors = positions[edges[0]] - positions[edges[1]]
        sh = o3.spherical_harmonics(
            model.irreps_sh, vectors, normalize=True, normalization="component"
        )
        h = layer(
            model.embedding(one_hot),
            one_hot,
            edges,
            sh,
            model.radial_embedding(vectors.norm(dim=-1)),
        )
        return h[:, -3].sum()  # the x-component of the last l=1 channel

    assert check_equivariance(bad_energy, *molecule, "0e")["rotation"] > 1e-3


def test_batched_energies_match_single_molecules(molecule):
    positions, numbers = molecule
    model = EquivariantPotential(l_max=1, multiplicities=4)
    index = species_index(numbers, SPECIES)
    batch = MoleculeBatch(
        torch.cat([positions, positions + 20.0]),
        torch.cat([index, index]),
        torch.tensor([0] * 6 + [1] * 6),
        2,
    )
    energies = model(batch)
    single = model.molecule_energy(positions, numbers)
    np.testing.assert_allclose(energies.detach(), [float(single)] * 2, rtol=0, atol=1e-12)


def test_bessel_basis_is_mace_normalisation_not_nequips():
    """sqrt(2/r_c) sin(n pi r/r_c)/r: mace-torch's BesselBasis; NequIP's prefactor 2/r_c differs."""
    from mace.modules.radial import BesselBasis as MaceBessel

    from acecourse.nn.radial import BesselBasis

    r = torch.linspace(0.2, 4.9, 50)
    ours = BesselBasis(5.0, 8)(r)
    assert torch.allclose(ours, MaceBessel(5.0, 8)(r[:, None]), rtol=1e-13, atol=0)
    n = torch.arange(1, 9)
    nequip = (2.0 / 5.0) * torch.sin(n * torch.pi * r[:, None] / 5.0) / r[:, None]
    assert torch.allclose(ours, nequip * (5.0 / 2.0) ** 0.5, rtol=1e-13, atol=0)
    assert not torch.allclose(ours, nequip, rtol=1e-3)
