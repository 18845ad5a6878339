"""The building blocks of MACE, written out for the course.

Each class computes one term of the MACE equations (Batatia et al., NeurIPS 2022) and stores its
weights in the same layout as the matching mace-torch 0.3.16 module, so that
:func:`acecourse.mace.model.load_mace_weights` can copy a trained or random mace-torch model into
it.  Only e3nn primitives are used (``o3.Linear``, ``o3.TensorProduct``,
``o3.spherical_harmonics``, ``e3nn.math.normalize2mom``); the generalised Clebsch–Gordan
tensors of the symmetric contraction are taken from ``mace.tools.cg.U_matrix_real`` (not
re-derived here).

Conventions (identical to mace-torch)
-------------------------------------
* Features are stored "mul x ir": a block ``C x l`` is laid out as ``[c, m]`` flattened, c-major.
* An edge ``(s, r)`` sends from node ``s = edge_index[0]`` to node ``r = edge_index[1]``; its
  vector is ``r_vec = x[r] - x[s]`` (from the neighbour to the centre), in Å.
* Spherical harmonics: e3nn 0.4.4, ``normalize=True``, ``normalization="component"`` (for a unit
  vector the ``2l+1`` components of each ``Y_l`` have squared norm ``2l+1``), in e3nn's real
  basis: the ``l = 1`` components are (x, y, z) in that order (the course's basis orders them
  (y, z, x)), and for every ``l`` e3nn's harmonics are the course's, up to normalisation,
  evaluated at the permuted point (z, x, y); see
  :func:`acecourse.maths.spherical_harmonics.e3nn_to_course_basis`.
"""

from __future__ import annotations

import functools
import itertools
import math

import torch
from e3nn import o3
from e3nn.math import normalize2mom

__all__ = [
    "ElementLinear",
    "Interaction",
    "NonLinearReadout",
    "ProductBasis",
    "RadialEmbedding",
    "RadialMLP",
    "SymmetricContraction",
    "bessel_basis",
    "channelwise_tp_irreps",
    "coupling_tensor",
    "polynomial_cutoff",
]


def bessel_basis(r: torch.Tensor, r_max: float, num_basis: int) -> torch.Tensor:
    r"""Radial Bessel functions :math:`\sqrt{2/r_c}\,\sin(n\pi r/r_c)/r`, :math:`n=1..N`.

    Parameters
    ----------
    r
        Distances in Å, shape ``(n_edges, 1)``.
    r_max
        Cutoff radius :math:`r_c` in Å.
    num_basis
        Number of functions :math:`N`.

    Returns
    -------
    torch.Tensor
        Shape ``(n_edges, num_basis)``, units Å⁻¹ᐟ² · Å⁻¹ (the prefactor makes them orthonormal on
        ``[0, r_c]`` with weight ``r²``).
    """
    n = torch.arange(1, num_basis + 1, dtype=r.dtype, device=r.device)
    return math.sqrt(2.0 / r_max) * torch.sin(n * math.pi / r_max * r) / r


def polynomial_cutoff(r: torch.Tensor, r_max: float, p: int = 5) -> torch.Tensor:
    r"""Smooth polynomial envelope: 1 at r=0; f, f' and f'' vanish at r_c.

    .. math::
        f(x) = 1 - \tfrac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1} - \tfrac{p(p+1)}{2} x^{p+2},
        \quad x = r/r_c,

    and ``f = 0`` for ``r >= r_c``.
    """
    x = r / r_max
    f = (
        1.0
        - (p + 1.0) * (p + 2.0) / 2.0 * x**p
        + p * (p + 2.0) * x ** (p + 1)
        - p * (p + 1.0) / 2.0 * x ** (p + 2)
    )
    return f * (r < r_max)


class RadialEmbedding(torch.nn.Module):
    """Edge features: ``bessel_basis(r) * polynomial_cutoff(r)``, shape ``(n_edges, num_bessel)``."""

    def __init__(self, r_max: float, num_bessel: int, p: int) -> None:
        super().__init__()
        self.r_max, self.num_bessel, self.p = r_max, num_bessel, p

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        return bessel_basis(lengths, self.r_max, self.num_bessel) * polynomial_cutoff(
            lengths, self.r_max, self.p
        )


class RadialMLP(torch.nn.Module):
    r"""Multilayer perceptron without biases, as ``e3nn.nn.FullyConnectedNet``.

    Each layer computes ``x @ W / sqrt(fan_in)``; hidden layers are followed by
    ``c * silu(x)`` where the constant ``c`` makes :math:`\langle (c\,\mathrm{silu}(z))^2\rangle = 1`
    for :math:`z\sim\mathcal N(0,1)`.  e3nn estimates ``c`` by Monte Carlo with a fixed seed
    (``normalize2mom``); we use the same estimate so that the outputs agree to round-off.
    """

    def __init__(self, sizes: list[int]) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(a, b)) for a, b in itertools.pairwise(sizes)]
        )
        self.act = normalize2mom(torch.nn.functional.silu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, w in enumerate(self.weights):
            x = x @ (w / math.sqrt(w.shape[0]))
            if k < len(self.weights) - 1:
                x = self.act(x)
        return x


class ElementLinear(torch.nn.Module):
    r"""An equivariant linear map whose weights depend on the chemical element of the node.

    ``out[n, w, m] = sum_{u, e} W^{(l)}[u, e, w] x[n, u, m] onehot[n, e] / sqrt(mul_in * n_elements)``
    for each irrep ``l`` present in both ``irreps_in`` and ``irreps_out``.  This is what mace-torch
    writes as ``o3.FullyConnectedTensorProduct(irreps, n_elements x 0e, irreps_out)`` (the
    "selector" tensor product, ``skip_tp``): a tensor product with a one-hot scalar is a linear map
    chosen by the element.  Weights are stored flat in that class's order.
    """

    def __init__(self, irreps_in: o3.Irreps, num_elements: int, irreps_out: o3.Irreps) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.num_elements = num_elements
        self.paths = []  # (slice_in, mul_in, slice_out, mul_out, dim, weight_offset, fan_in)
        offset = 0
        fan_in = {
            i_out: sum(m_in * num_elements for m_in, ir_in in self.irreps_in if ir_in == ir_out)
            for i_out, (_, ir_out) in enumerate(self.irreps_out)
        }
        slices_in, slices_out = self.irreps_in.slices(), self.irreps_out.slices()
        for i_in, (mul_in, ir_in) in enumerate(self.irreps_in):
            for i_out, (mul_out, ir_out) in enumerate(self.irreps_out):
                if ir_in == ir_out:
                    self.paths.append(
                        (slices_in[i_in], mul_in, slices_out[i_out], mul_out, ir_in.dim, offset,
                         fan_in[i_out])
                    )
                    offset += mul_in * num_elements * mul_out
        self.weight = torch.nn.Parameter(torch.randn(offset))

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], self.irreps_out.dim)
        for s_in, mul_in, s_out, mul_out, dim, offset, fan_in in self.paths:
            w = self.weight[offset : offset + mul_in * self.num_elements * mul_out]
            w = w.view(mul_in, self.num_elements, mul_out)
            xin = x[:, s_in].reshape(-1, mul_in, dim)
            y = torch.einsum("uew,num,ne->nwm", w, xin, onehot)
            out[:, s_out] += y.reshape(-1, mul_out * dim) / math.sqrt(fan_in)
        return out


def channelwise_tp_irreps(
    irreps_in: o3.Irreps, irreps_sh: o3.Irreps, target: o3.Irreps
) -> tuple[o3.Irreps, list[tuple[int, int, int, str, bool]]]:
    """Output irreps and instructions of the channel-wise ("uvu") tensor product.

    Every pair (feature irrep, spherical-harmonic irrep) gives each allowed output irrep ``L``
    that appears in ``target``, with the feature's multiplicity; outputs are then sorted by irrep
    (same ordering as ``mace.modules.irreps_tools.tp_out_irreps_with_instructions``).
    """
    outs, instructions = [], []
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir_out in ir_in * ir_sh:
                if ir_out in target:
                    instructions.append((i, j, len(outs), "uvu", True))
                    outs.append((mul, ir_out))
    irreps_mid, permutation, _ = o3.Irreps(outs).sort()
    instructions = sorted(
        [(i, j, permutation[k], mode, train) for i, j, k, mode, train in instructions],
        key=lambda ins: ins[2],
    )
    return irreps_mid, instructions


class Interaction(torch.nn.Module):
    r"""One MACE interaction: the one-particle basis :math:`A_{i,kLM}` of eqs. (8)–(9).

    .. math::
        A_{i,k l_3 m_3} = \frac{1}{\bar N}\sum_{l_1 l_2}\sum_{\tilde k} W_{k\tilde k,\,l_1 l_2 l_3}
        \sum_{j\in\mathcal N(i)} \sum_{m_1 m_2} C^{l_3 m_3}_{l_1 m_1 l_2 m_2}
        R_{\tilde k l_1 l_2 l_3}(r_{ij}) Y_{l_1}^{m_1}(\hat r_{ij}) \bar h_{j,\tilde k l_2 m_2}

    with :math:`\bar h = ` ``linear_up(h)``, :math:`R` from the radial MLP, the channel-wise
    tensor product ``conv_tp`` (one weight per channel and path) and ``linear`` the mixing
    :math:`W`: one :math:`K\times K` matrix per coupling path :math:`(l_1, l_2) \to l_3`, since
    the tensor product's outputs are sorted but not merged (``irreps_mid`` has one block per
    path, as in mace-torch).  ``residual=True`` is ``RealAgnosticResidualInteractionBlock`` (it also returns the
    element-dependent self-connection ``sc`` of the input features); ``residual=False`` is
    ``RealAgnosticInteractionBlock`` (the element-dependent linear acts on the message and
    ``sc`` is ``None``).
    """

    def __init__(
        self,
        node_feats_irreps: o3.Irreps,
        sh_irreps: o3.Irreps,
        target_irreps: o3.Irreps,
        hidden_irreps_out: o3.Irreps,
        num_elements: int,
        num_bessel: int,
        radial_mlp: list[int],
        avg_num_neighbors: float,
        residual: bool,
    ) -> None:
        super().__init__()
        self.residual = residual
        self.avg_num_neighbors = avg_num_neighbors
        self.target_irreps = o3.Irreps(target_irreps)
        self.linear_up = o3.Linear(node_feats_irreps, node_feats_irreps)
        irreps_mid, instructions = channelwise_tp_irreps(node_feats_irreps, sh_irreps, target_irreps)
        self.conv_tp = o3.TensorProduct(
            node_feats_irreps, sh_irreps, irreps_mid, instructions,
            shared_weights=False, internal_weights=False,
        )
        self.radial_mlp = RadialMLP([num_bessel, *radial_mlp, self.conv_tp.weight_numel])
        self.linear = o3.Linear(irreps_mid, target_irreps)
        if residual:
            self.skip = ElementLinear(node_feats_irreps, num_elements, hidden_irreps_out)
        else:
            self.skip = ElementLinear(target_irreps, num_elements, target_irreps)
        self.num_channels = self.target_irreps[0].mul

    def forward(
        self,
        node_feats: torch.Tensor,
        onehot: torch.Tensor,
        edge_sh: torch.Tensor,
        edge_radial: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(A, sc)``; ``A`` has shape ``(n_nodes, channels, (l_max+1)**2)``."""
        sc = self.skip(node_feats, onehot) if self.residual else None
        h = self.linear_up(node_feats)
        sender, receiver = edge_index
        messages = self.conv_tp(h[sender], edge_sh, self.radial_mlp(edge_radial))
        aggregated = torch.zeros(
            h.shape[0], messages.shape[1], dtype=messages.dtype, device=messages.device
        ).index_add_(0, receiver, messages)
        a = self.linear(aggregated) / self.avg_num_neighbors
        if not self.residual:
            a = self.skip(a, onehot)
        return self.to_channels_last(a), sc

    def to_channels_last(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, [C x l blocks])`` -> ``(n, C, sum_l (2l+1))``: every block has ``C`` channels."""
        blocks, start = [], 0
        for mul, ir in self.target_irreps:
            blocks.append(x[:, start : start + mul * ir.dim].reshape(-1, mul, ir.dim))
            start += mul * ir.dim
        return torch.cat(blocks, dim=-1)


@functools.lru_cache(maxsize=64)
def coupling_tensor(irreps_in: str, ir_out: str, nu: int, dtype: torch.dtype) -> torch.Tensor:
    r"""Generalised Clebsch–Gordan tensor :math:`\mathcal U^{(\nu)}` of shape ``(2L+1, d, ..., d, n_eta)``.

    Couples ``nu`` copies of ``irreps_in`` (one copy of each irrep, total dimension ``d``) to the
    irrep ``ir_out``; the last axis enumerates coupling paths.  Computed by mace-torch's
    ``mace.tools.cg.U_matrix_real`` (the same call mace makes; cached here), with the ``M`` axis
    kept also for ``L = 0``.
    """
    from mace.tools.cg import U_matrix_real

    u = U_matrix_real(irreps_in=o3.Irreps(irreps_in), irreps_out=o3.Irreps(ir_out),
                      correlation=nu, use_cueq_cg=False, dtype=dtype)[-1]
    if o3.Irrep(ir_out).l == 0:  # mace squeezes the M axis of size 1: put it back
        u = u.unsqueeze(0)
    return u


class SymmetricContraction(torch.nn.Module):
    r"""The product basis of MACE, eqs. (10)–(11), for every output irrep ``L``.

    .. math::
        m_{i,kLM} = \sum_{\nu=1}^{\nu_{\max}} \sum_{\eta} W^{(\nu)}_{z_i,\eta k L}
        \sum_{l_1m_1\dots l_\nu m_\nu} \mathcal U^{LM}_{\eta;\,l_1m_1\dots l_\nu m_\nu}
        \prod_{\xi=1}^{\nu} A_{i,k l_\xi m_\xi}

    The tensor :math:`\mathcal U^{(\nu)}` (generalised Clebsch–Gordan coefficients that couple
    ``ν`` copies of ``0e+1o+…`` to ``L``) is computed by ``mace.tools.cg.U_matrix_real``; ``η``
    enumerates coupling paths.  Only the part of ``U`` symmetric in its ``ν`` input indices acts
    on ``A ⊗ … ⊗ A``, and some paths are linearly dependent there (see
    :func:`acecourse.mace.counting.independent_couplings`).  The weights depend on the element
    ``z_i`` and the channel ``k`` but are shared over ``M``.  We evaluate the sum in
    Horner form, ``((U3 w3 · A + U2 w2) · A + U1 w1) · A``, element by element.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        correlation: int,
        num_elements: int,
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.correlation = correlation
        self.num_channels = self.irreps_in[0].mul
        coupling = o3.Irreps([ir for _, ir in self.irreps_in])
        dtype = torch.get_default_dtype()
        self.weights = torch.nn.ModuleList()
        for j, (_, ir_out) in enumerate(self.irreps_out):
            ws = torch.nn.ParameterList()
            for nu in range(1, correlation + 1):
                u = coupling_tensor(str(coupling), str(ir_out), nu, dtype)
                self.register_buffer(f"u_{j}_{nu}", u.clone())
                ws.append(  # initialised as mace-torch does: N(0, 1) / number of couplings
                    torch.nn.Parameter(
                        torch.randn(num_elements, u.shape[-1], self.num_channels) / u.shape[-1]
                    )
                )
            self.weights.append(ws)

    def forward(self, a: torch.Tensor, element: torch.Tensor) -> torch.Tensor:
        """The message ``m``: ``(n, irreps_out.dim)``.

        ``a``: ``(n, C, (l_max+1)**2)``; ``element``: ``(n,)`` element indices.
        """
        outputs = []
        for j, (ws, (_, ir_out)) in enumerate(zip(self.weights, self.irreps_out)):
            out = a.new_zeros(a.shape[0], self.num_channels, ir_out.dim)
            for e in torch.unique(element).tolist():
                mask = element == e
                ae = a[mask]
                acc = None
                for nu in range(self.correlation, 0, -1):
                    u = self.u_tensor(j, nu)
                    # U w: (C, M, i_1, ..., i_nu)
                    uw = torch.einsum("...k,kc->c...", u, ws[nu - 1][e])
                    t = uw.unsqueeze(0) if acc is None else uw.unsqueeze(0) + acc
                    # contract the last A index:
                    # (n, C, M, i_1..i_nu) -> (n, C, M, i_1..i_{nu-1})
                    acc = torch.einsum("nc...i,nci->nc...", t, ae)
                out = out.index_put((mask.nonzero()[:, 0],), acc)
            outputs.append(out.reshape(a.shape[0], -1))
        return torch.cat(outputs, dim=-1)

    def u_tensor(self, j: int, nu: int) -> torch.Tensor:
        """Coupling tensor ``U[M, i_1, ..., i_nu, eta]`` of output irrep ``j`` and order ``nu``."""
        return getattr(self, f"u_{j}_{nu}")


class ProductBasis(torch.nn.Module):
    """Symmetric contraction, then a linear map (the "update"), plus the residual ``sc``."""

    def __init__(
        self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int, num_elements: int
    ) -> None:
        super().__init__()
        self.symmetric_contraction = SymmetricContraction(
            irreps_in, irreps_out, correlation, num_elements
        )
        self.linear = o3.Linear(irreps_out, irreps_out)

    def forward(
        self, a: torch.Tensor, element: torch.Tensor, sc: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.linear(self.symmetric_contraction(a, element))
        return h if sc is None else h + sc


class NonLinearReadout(torch.nn.Module):
    """Last-layer readout: ``Linear -> c*silu -> Linear`` on the scalar features."""

    def __init__(self, irreps_in: o3.Irreps, mlp_irreps: o3.Irreps) -> None:
        super().__init__()
        self.linear_1 = o3.Linear(irreps_in, mlp_irreps)
        self.act = normalize2mom(torch.nn.functional.silu)
        self.linear_2 = o3.Linear(mlp_irreps, o3.Irreps("0e"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))
