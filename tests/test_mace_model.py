"""The course's MACE (acecourse.mace) against mace-torch 0.3.16, in float64."""

from __future__ import annotations

import pytest
import torch

import acecourse.mace as cm
from acecourse.data import load_rmd17_ethanol
from acecourse.equivariance import assert_equivariant, forces_from_energy

CUTOFF = 5.0


pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.fixture(scope="module")
def frames():
    return load_rmd17_ethanol("train", indices=[0, 250, 999])


def _pair(config: cm.MACEConfig, seed: int = 0):
    torch.manual_seed(seed)
    reference = cm.build_mace_torch(config)
    course = cm.load_mace_weights(cm.CourseMACE(config), reference)
    return reference, course


def _compare(config: cm.MACEConfig, frames) -> tuple[float, float]:
    reference, course = _pair(config)
    batch = cm.mace_batch(frames, config.atomic_numbers, CUTOFF)
    expected = reference(batch, compute_force=True)
    positions, element, edges, graphs = [], [], [], []
    offset = 0
    for g, atoms in enumerate(frames):
        p, e, ei = cm.atoms_to_inputs(atoms, config.atomic_numbers, CUTOFF)
        positions.append(p)
        element.append(e)
        edges.append(ei + offset)
        graphs.append(torch.full((len(atoms),), g))
        offset += len(atoms)
    assert cm.count_parameters(course) == cm.count_parameters(reference)
    edge_index = torch.cat(edges, 1)
    assert torch.equal(edge_index, batch["edge_index"])  # same graph as mace.data
    got = course(torch.cat(positions), torch.cat(element), edge_index, batch=torch.cat(graphs))
    de = (got["energy"] - expected["energy"]).abs().max().item()
    df = (got["forces"] - expected["forces"]).abs().max().item()
    return de, df


def test_radial_basis_matches_mace():
    from mace.modules.radial import BesselBasis, PolynomialCutoff

    r = torch.linspace(0.1, 6.0, 60)[:, None]
    assert torch.allclose(cm.bessel_basis(r, 5.0, 8), BesselBasis(5.0, 8)(r), atol=1e-14)
    assert torch.allclose(cm.polynomial_cutoff(r, 5.0, 5), PolynomialCutoff(5.0, 5)(r), atol=1e-14)
    # envelope: 1 at r=0, 0 at and beyond r_c, with vanishing first derivative at r_c
    x = torch.tensor([[0.0], [5.0], [5.5]])
    f = cm.polynomial_cutoff(x, 5.0, 5)
    assert f[0].item() == 1.0 and abs(f[1].item()) < 1e-12 and f[2].item() == 0.0
    r = torch.tensor([[5.0 - 1e-4]], requires_grad=True)
    (slope,) = torch.autograd.grad(cm.polynomial_cutoff(r, 5.0, 5).sum(), r)
    assert abs(slope.item()) < 1e-7  # f ~ (r_c - r)^3: value and two derivatives vanish


def test_small_scaleshift_matches_mace(frames):
    """(a) 16 channels, l_max 2, correlation 3, 2 layers; mace_run_train's block choice."""
    config = cm.MACEConfig(hidden_irreps="16x0e+16x1o", max_ell=2, scale=1.7, shift=-0.3)
    de, df = _compare(config, frames)
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_small_plain_mace_residual_first_matches_mace(frames):
    config = cm.MACEConfig(hidden_irreps="16x0e+16x1o", max_ell=2, scale_shift=False,
                           first_interaction_residual=True)
    de, df = _compare(config, frames)
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_rmd17_structure_matches_mace(frames):
    """(b) the rMD17 structure (0e+1o+2e hidden, l_max 3, correlation 3) with 8 channels."""
    config = cm.MACEConfig(hidden_irreps="8x0e+8x1o+8x2e", max_ell=3, correlation=3,
                           radial_MLP=[16, 16], MLP_irreps="8x0e", scale=0.9)
    de, df = _compare(config, frames[:2])
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_equivariance_and_permutation_invariance(frames):
    config = cm.MACEConfig(hidden_irreps="8x0e+8x1o", max_ell=2, radial_MLP=[16, 16])
    torch.manual_seed(1)
    course = cm.CourseMACE(config)  # random weights of its own
    positions, element, _ = cm.atoms_to_inputs(frames[0], config.atomic_numbers, CUTOFF)

    def site_energies(p, s):  # interaction part only: E0 (~1e3 eV) would hide round-off
        out = course(p, s, cm.neighbour_graph(p, CUTOFF), compute_forces=False)
        return out["node_interaction_energy"]

    def energy(p, s):
        return site_energies(p, s).sum()

    def node_features(p, s):
        store = {}
        course(p, s, cm.neighbour_graph(p, CUTOFF), compute_forces=False, intermediates=store)
        return store["h_1"]

    assert_equivariant(site_energies, positions, element, "0e", atol=1e-12)
    assert_equivariant(forces_from_energy(energy), positions, element, "1o", atol=1e-10)
    assert_equivariant(node_features, positions, element, "8x0e+8x1o", atol=1e-10)


def test_symmetric_contraction_is_symmetric_polynomial():
    """The product basis of order nu is a homogeneous polynomial of degree nu in A."""
    torch.manual_seed(0)
    irreps_in = "4x0e+4x1o+4x2e"
    sc = cm.SymmetricContraction(irreps_in, "4x0e+4x1o", correlation=3, num_elements=2)
    a = torch.randn(5, 4, 9)
    element = torch.tensor([0, 1, 0, 1, 1])
    # keep only order nu=2: zero the weights of nu=1 and nu=3
    with torch.no_grad():
        for ws in sc.weights:
            ws[0].zero_()
            ws[2].zero_()
    assert torch.allclose(sc(2.0 * a, element), 4.0 * sc(a, element), atol=1e-12)


def test_one_layer_model_matches_mace(frames):
    """A single interaction: mace keeps the linear readout (no MLP) — the body-order setting."""
    config = cm.MACEConfig(hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2,
                           num_interactions=1, radial_MLP=[16, 16])
    de, df = _compare(config, frames[:1])
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_coupling_counts_agree_with_characters():
    """Rank of the symmetrised U tensors = multiplicity of L in the symmetric power (characters)."""
    from e3nn import o3

    expected = {(2, 0): 3, (2, 1): 2, (2, 2): 3, (3, 0): 5, (3, 1): 5, (3, 2): 6}
    irreps = str(o3.Irreps.spherical_harmonics(2))
    for (nu, L), count in expected.items():
        assert cm.symmetric_coupling_count(2, nu, L) == count
        u = cm.coupling_tensor(irreps, f"{L}{'eo'[L % 2]}", nu, torch.float64)
        assert cm.independent_couplings(u) == count
