"""The course's MACE (acecourse.mace) against mace-torch 0.3.16, in float64."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import acecourse.mace as cm
from acecourse.data import load_rmd17_ethanol
from acecourse.equivariance import assert_equivariant, forces_from_energy
from acecourse.maths.spherical_harmonics import real_spherical_harmonics

CUTOFF = 5.0

pytestmark = pytest.mark.usefixtures("float64_default", "cached_coupling_tensors")


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
    assert (cm.bessel_basis(r, 5.0, 8) - BesselBasis(5.0, 8)(r)).abs().max() < 1e-14
    assert (cm.polynomial_cutoff(r, 5.0, 5) - PolynomialCutoff(5.0, 5)(r)).abs().max() < 1e-14
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
    config = cm.MACEConfig(
        hidden_irreps="16x0e+16x1o", max_ell=2, scale_shift=False, first_interaction_residual=True
    )
    de, df = _compare(config, frames)
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_rmd17_structure_matches_mace(frames):
    """(b) the rMD17 structure (0e+1o+2e hidden, l_max 3, correlation 3) with 8 channels."""
    config = cm.MACEConfig(
        hidden_irreps="8x0e+8x1o+8x2e",
        max_ell=3,
        correlation=3,
        radial_MLP=[16, 16],
        MLP_irreps="8x0e",
        scale=0.9,
    )
    de, df = _compare(config, frames[:2])
    assert de < 1e-10 and df < 1e-10, (de, df)


def test_equivariance_and_permutation_invariance(frames):
    config = cm.MACEConfig(hidden_irreps="8x0e+8x1o", max_ell=2, radial_MLP=[16, 16])
    torch.manual_seed(1)
    course = cm.CourseMACE(config)  # random weights of its own
    positions, element, _ = cm.atoms_to_inputs(frames[0], config.atomic_numbers, CUTOFF)
    # The three checks below draw the same transformations (same seed): one forward pass per
    # transformed configuration gives all three outputs.
    passes = {}

    def outputs(p, s):
        key = (p.detach().numpy().tobytes(), s.numpy().tobytes())
        if key not in passes:
            store = {}

            def site_energies(q, t):  # interaction part only: E0 (~1e3 eV) would hide round-off
                out = course(q, t, cm.neighbour_graph(q, CUTOFF), compute_forces=False,
                             intermediates=store)  # fmt: skip
                store["site"] = out["node_interaction_energy"]
                return store["site"]

            forces = forces_from_energy(site_energies)(p, s)  # the pass that fills store
            passes[key] = {"site": store["site"].detach(), "forces": forces,
                           "h_1": store["h_1"].detach()}  # fmt: skip
        return passes[key]

    assert_equivariant(lambda p, s: outputs(p, s)["site"], positions, element, "0e", atol=1e-12)
    assert_equivariant(lambda p, s: outputs(p, s)["forces"], positions, element, "1o", atol=1e-10)
    assert_equivariant(lambda p, s: outputs(p, s)["h_1"], positions, element, "8x0e+8x1o",
                       atol=1e-10)  # fmt: skip
    assert len(passes) == 1 + 4 * 3  # the original and 3 of each kind of transformation


def test_linear_after_the_tensor_product_has_one_matrix_per_path():
    """W_{k k~, l1 l2 l3}: one K x K matrix per coupling path, not one per output degree l3."""
    config = cm.MACEConfig(
        hidden_irreps="8x0e+8x1o+8x2e", max_ell=3, radial_MLP=[16, 16], MLP_irreps="8x0e"
    )
    reference, course = _pair(config)
    paths = [len(block.conv_tp.instructions) for block in reference.interactions]
    assert paths == [len(block.conv_tp.instructions) for block in course.interactions] == [4, 17]
    for ref, ours, n_paths in zip(reference.interactions, course.interactions, paths):
        assert ref.linear.weight_numel == ours.linear.weight_numel == n_paths * 8 * 8
    degrees = len(reference.interactions[1].linear.irreps_out)  # 0e, 1o, 2e, 3o
    assert degrees == 4 and reference.interactions[1].linear.weight_numel > degrees * 8 * 8


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
    assert torch.allclose(sc(2.0 * a, element), 4.0 * sc(a, element), rtol=1e-13, atol=0)


def test_one_layer_model_matches_mace(frames):
    """A single interaction: mace keeps the linear readout (no MLP) — the body-order setting."""
    config = cm.MACEConfig(
        hidden_irreps="8x0e+8x1o", max_ell=2, correlation=2, num_interactions=1, radial_MLP=[16, 16]
    )
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


def _module_pair(seed: int = 0):
    """mace-torch and the course's model with the same weights; product-basis weights O(1).

    mace initialises the product-basis weights as N(0, 1) / (number of couplings); at that size
    and with the small A of a real molecule, the nu = 3 term of layer 2 moves the energy by only
    ~1e-9 eV, so a model-level comparison tests it weakly.  Here every weight is N(0, 1).
    """
    config = cm.MACEConfig(
        hidden_irreps="8x0e+8x1o+8x2e",
        max_ell=3,
        correlation=3,
        radial_MLP=[16, 16],
        MLP_irreps="8x0e",
    )
    torch.manual_seed(seed)
    reference = cm.build_mace_torch(config)
    with torch.no_grad():
        for product in reference.products:
            for weight in product.symmetric_contractions.parameters():
                weight.copy_(torch.randn_like(weight))
    return config, reference, cm.load_mace_weights(cm.CourseMACE(config), reference)


@pytest.fixture(scope="module")
def module_pair(cached_coupling_tensors):
    """:func:`_module_pair`, built once for the tests that only read the two models."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return _module_pair()
    finally:
        torch.set_default_dtype(previous)


def _random_graph(n_nodes: int, n_edges: int, generator: torch.Generator):
    sender = torch.randint(0, n_nodes, (n_edges,), generator=generator)
    receiver = (sender + torch.randint(1, n_nodes, (n_edges,), generator=generator)) % n_nodes
    vectors = torch.randn(n_edges, 3, generator=generator)
    lengths = 0.8 + 4.0 * torch.rand(n_edges, 1, generator=generator)  # inside r_c = 5 Å
    return torch.stack([sender, receiver]), vectors / vectors.norm(dim=1, keepdim=True) * lengths


def test_symmetric_contraction_module_matches_mace(module_pair):
    """O(1) random A and weights: outputs of order 10-100 agree to ~1e-16 relative, nu = 3 included."""
    config, reference, course = module_pair
    course = copy.deepcopy(course)  # its nu = 3 weights are zeroed below
    generator = torch.Generator().manual_seed(1)
    element = torch.randint(0, 3, (12,), generator=generator)
    onehot = torch.nn.functional.one_hot(element, 3).to(torch.float64)
    a = torch.randn(12, 8, (config.max_ell + 1) ** 2, generator=generator)
    for t in range(config.num_interactions):
        expected = reference.products[t].symmetric_contractions(a, onehot)
        contraction = course.products[t].symmetric_contraction
        got = contraction(a, element)
        size = expected.abs().max().item()
        assert size > 1.0
        assert (got - expected).abs().max().item() < 1e-14 * size, t  # ~50 ulps of the largest
        with torch.no_grad():  # the nu = 3 term carries a large share of the output
            for weights in contraction.weights:
                weights[2].zero_()
        assert (contraction(a, element) - expected).abs().max().item() > 0.1 * size, t


def test_interaction_and_product_blocks_match_mace(module_pair):
    """Both interaction blocks (first: skip_tp on the message; then residual) and the product blocks."""
    _, reference, course = module_pair
    generator = torch.Generator().manual_seed(2)
    n_nodes = 10
    element = torch.randint(0, 3, (n_nodes,), generator=generator)
    onehot = torch.nn.functional.one_hot(element, 3).to(torch.float64)
    edge_index, vectors = _random_graph(n_nodes, 60, generator)
    edge_sh = reference.spherical_harmonics(vectors)
    edge_radial, _ = reference.radial_embedding(
        vectors.norm(dim=1, keepdim=True), onehot, edge_index, reference.atomic_numbers
    )
    assert torch.allclose(
        edge_radial, course.radial(vectors.norm(dim=1, keepdim=True)), rtol=1e-14, atol=0
    )
    inputs = [8, reference.interactions[1].node_feats_irreps.dim]  # 8x0e, then 8x0e+8x1o+8x2e
    for t, dim in enumerate(inputs):
        h = torch.randn(n_nodes, dim, generator=generator)
        a_ref, sc_ref = reference.interactions[t](
            node_attrs=onehot,
            node_feats=h,
            edge_attrs=edge_sh,
            edge_feats=edge_radial,
            edge_index=edge_index,
        )
        a, sc = course.interactions[t](h, onehot, edge_sh, edge_radial, edge_index)
        assert (a - a_ref).abs().max().item() < 1e-14 * a_ref.abs().max().item(), t
        if t == 0:  # RealAgnosticInteractionBlock: no residual, A depends on the centre's element
            assert sc is None and sc_ref is None
        else:
            assert (sc - sc_ref).abs().max().item() < 1e-14 * sc_ref.abs().max().item()
        a_unit = a_ref / a_ref.std()  # O(1) input of the product block
        h_ref = reference.products[t](node_feats=a_unit, sc=sc_ref, node_attrs=onehot)
        h_out = course.products[t](a_unit, element, sc)
        assert (h_out - h_ref).abs().max().item() < 1e-14 * h_ref.abs().max().item(), t


def test_first_layer_one_particle_basis_depends_on_the_centre_element(module_pair):
    """skip_tp acts on the message in layer 1: changing only the centre's element changes A^(1)."""
    _, reference, course = module_pair
    generator = torch.Generator().manual_seed(3)
    edge_index, vectors = _random_graph(6, 20, generator)
    element = torch.tensor([0, 1, 2, 0, 1, 2])
    h0 = course.node_embedding(torch.nn.functional.one_hot(element, 3).to(torch.float64))
    sh = reference.spherical_harmonics(vectors)
    radial = course.radial(vectors.norm(dim=1, keepdim=True))
    other = element.clone()
    other[0] = 1  # change the element of node 0 only; its neighbours' features stay the same
    onehot = torch.nn.functional.one_hot(element, 3).to(torch.float64)
    onehot_other = torch.nn.functional.one_hot(other, 3).to(torch.float64)
    a, _ = course.interactions[0](h0, onehot, sh, radial, edge_index)
    b, _ = course.interactions[0](h0, onehot_other, sh, radial, edge_index)
    changed = (a - b).abs().amax(dim=(1, 2))
    assert changed[0] > 1e-3 and torch.all(changed[1:] == 0)


def test_linear_readout_option_bounds_the_body_order():
    """b_T = nu * b_(T-1) + 1: 2 layers of nu = 1 with linear readouts are 3-body, exactly."""
    generator = torch.Generator().manual_seed(4)
    directions = torch.randn(4, 3, generator=generator)
    radii = torch.tensor([[1.0], [1.5], [2.0], [2.4]])  # every pair closer than 4.8 Å < r_c
    cluster = torch.cat(
        [torch.zeros(1, 3), directions / directions.norm(dim=1, keepdim=True) * radii]
    )
    moves = torch.randn(4, 3, generator=generator)
    elements = torch.tensor([1, 0, 2, 1, 0])

    def mixed(model):
        s = torch.zeros(4, requires_grad=True)
        positions = cluster.clone()
        positions[1:] = positions[1:] + s[:, None] * moves
        out = model(positions, elements, cm.neighbour_graph(cluster, CUTOFF), compute_forces=False)
        derivative, values = out["node_interaction_energy"][0], []
        for k in range(3):
            (gradient,) = torch.autograd.grad(derivative, s, create_graph=True)
            derivative = gradient[k]
            values.append(derivative.item())
        return values

    models = {}
    for nonlinear in (False, True):
        config = cm.MACEConfig(
            hidden_irreps="4x0e+4x1o",
            max_ell=2,
            correlation=1,
            radial_MLP=[8],
            MLP_irreps="4x0e",
            nonlinear_readout=nonlinear,
        )
        torch.manual_seed(0)
        models[nonlinear] = cm.CourseMACE(config)
    linear, mlp = mixed(models[False]), mixed(models[True])
    assert abs(linear[0]) > 1e-10 and abs(linear[1]) > 1e-10 and linear[2] == 0.0
    assert mlp[2] != 0.0
    with pytest.raises(ValueError, match="nonlinear_readout"):
        cm.build_mace_torch(cm.MACEConfig(nonlinear_readout=False))


def test_edge_harmonics_convention_of_the_docstring():
    """e3nn 0.4.4 (as the blocks use it): l = 1 is (x, y, z) with squared norm 3 on unit vectors."""
    from e3nn import o3

    unit = torch.eye(3)
    y1 = o3.spherical_harmonics(1, unit, normalize=True, normalization="component")
    assert (y1 - 3**0.5 * unit).abs().max() < 1e-14  # e_x -> (√3, 0, 0), ...: order x, y, z
    generator = torch.Generator().manual_seed(5)
    vectors = torch.randn(20, 3, generator=generator)
    sh = o3.spherical_harmonics(
        o3.Irreps.spherical_harmonics(3), vectors, normalize=True, normalization="component"
    )
    unit_vectors = (vectors / vectors.norm(dim=1, keepdim=True)).numpy()
    ours = real_spherical_harmonics(3, unit_vectors[:, [2, 0, 1]]) * (4 * math.pi) ** 0.5
    for l in range(4):
        block = sh[:, l * l : (l + 1) ** 2]
        assert torch.allclose((block**2).sum(1), torch.full((20,), 2.0 * l + 1), rtol=1e-12, atol=0)
        # e3nn's Y_l(r) = sqrt(4 pi) x the course's Y_l at the permuted point (z, x, y)
        assert abs(block.numpy() - ours[:, l * l : (l + 1) ** 2]).max() < 1e-13
