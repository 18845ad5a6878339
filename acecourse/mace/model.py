"""A compact MACE that loads the weights of a mace-torch ``MACE``/``ScaleShiftMACE``.

:class:`CourseMACE` is built from a :class:`MACEConfig`; :func:`build_mace_torch` builds the
mace-torch model with the same hyperparameters; :func:`load_mace_weights` copies every weight of
the latter into the former (the names are mapped one by one, and the shapes must agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from e3nn import o3

from acecourse.mace.blocks import (
    Interaction,
    NonLinearReadout,
    ProductBasis,
    RadialEmbedding,
)
from acecourse.nn.interaction import count_parameters  # re-exported: one definition

__all__ = ["CourseMACE", "MACEConfig", "build_mace_torch", "count_parameters", "load_mace_weights"]


@dataclass
class MACEConfig:
    """Hyperparameters of MACE (names follow ``mace.modules.MACE``; lengths in Å, energies in eV).

    ``first_interaction_residual=False`` is what ``mace_run_train --model MACE`` builds
    (``RealAgnosticInteractionBlock`` first, ``RealAgnosticResidualInteractionBlock`` after);
    ``scale_shift=True`` builds ``ScaleShiftMACE`` (the model class that command returns).
    ``nonlinear_readout=False`` is not a mace-torch option: it gives the last layer a linear
    readout like the others, so that the site energy stays a polynomial in the one-particle
    bases (chapter 03/03 measures its body order); :func:`build_mace_torch` refuses it.
    """

    hidden_irreps: str = "16x0e+16x1o"
    max_ell: int = 2
    correlation: int = 3
    num_interactions: int = 2
    r_max: float = 5.0
    num_bessel: int = 8
    num_polynomial_cutoff: int = 5
    MLP_irreps: str = "16x0e"
    radial_MLP: list[int] = field(default_factory=lambda: [64, 64, 64])
    atomic_numbers: list[int] = field(default_factory=lambda: [1, 6, 8])
    atomic_energies: list[float] = field(default_factory=lambda: [-13.6, -1029.4, -2041.9])
    avg_num_neighbors: float = 8.0
    first_interaction_residual: bool = False
    scale_shift: bool = True
    scale: float = 1.0
    shift: float = 0.0
    nonlinear_readout: bool = True

    @property
    def num_elements(self) -> int:
        return len(self.atomic_numbers)


def _target_irreps(num_channels: int, max_ell: int) -> o3.Irreps:
    """``C x 0e + C x 1o + ... + C x l_max p``: the irreps of the one-particle basis A."""
    return o3.Irreps([(num_channels, (l, (-1) ** l)) for l in range(max_ell + 1)])


class CourseMACE(torch.nn.Module):
    """MACE written for reading: embedding → (interaction → product → readout) × T → energy.

    Call it with positions (Å), element indices (0..n_elements-1, in the order of
    ``config.atomic_numbers``) and an edge list; it returns energies (eV) and forces (eV/Å).
    """

    def __init__(self, config: MACEConfig) -> None:
        super().__init__()
        self.config = c = config
        hidden = o3.Irreps(c.hidden_irreps)
        if any(ir.p == -1 and ir.l == 0 for _, ir in hidden):
            raise ValueError("hidden_irreps with odd scalars (0o) are not supported here")
        num_channels = hidden.count("0e")
        sh_irreps = o3.Irreps.spherical_harmonics(c.max_ell)
        target = _target_irreps(num_channels, c.max_ell)
        self.sh_irreps = sh_irreps
        self.register_buffer("atomic_energies", torch.tensor(c.atomic_energies))
        self.node_embedding = o3.Linear(
            o3.Irreps(f"{c.num_elements}x0e"), o3.Irreps(f"{num_channels}x0e")
        )
        self.radial = RadialEmbedding(c.r_max, c.num_bessel, c.num_polynomial_cutoff)
        self.interactions = torch.nn.ModuleList()
        self.products = torch.nn.ModuleList()
        self.readouts = torch.nn.ModuleList()
        node_irreps = o3.Irreps(f"{num_channels}x0e")
        for t in range(c.num_interactions):
            last = t == c.num_interactions - 1
            out_irreps = o3.Irreps(str(hidden[0])) if last else hidden
            residual = c.first_interaction_residual if t == 0 else True
            self.interactions.append(
                Interaction(node_irreps, sh_irreps, target, out_irreps, c.num_elements,
                            c.num_bessel, list(c.radial_MLP), c.avg_num_neighbors, residual)
            )
            self.products.append(ProductBasis(target, out_irreps, c.correlation, c.num_elements))
            # mace: an MLP reads out the last layer, but a single-layer model keeps a linear one
            if last and t > 0 and c.nonlinear_readout:
                self.readouts.append(NonLinearReadout(out_irreps, o3.Irreps(c.MLP_irreps)))
            else:
                self.readouts.append(o3.Linear(out_irreps, o3.Irreps("0e")))
            node_irreps = out_irreps
        self.register_buffer("scale", torch.tensor(float(c.scale)))
        self.register_buffer("shift", torch.tensor(float(c.shift)))

    def forward(
        self,
        positions: torch.Tensor,
        element: torch.Tensor,
        edge_index: torch.Tensor,
        batch: torch.Tensor | None = None,
        compute_forces: bool = True,
        intermediates: dict | None = None,
    ) -> dict[str, torch.Tensor]:
        """Energies and forces.

        Parameters
        ----------
        positions
            ``(n_nodes, 3)`` in Å.
        element
            ``(n_nodes,)`` integer index into ``config.atomic_numbers``.
        edge_index
            ``(2, n_edges)``: row 0 senders (neighbours ``j``), row 1 receivers
            (centres ``i``).
        batch
            ``(n_nodes,)`` graph index of each node (default: one graph).
        intermediates
            If a dict is given, every intermediate tensor is stored in it under a
            readable name.

        Returns
        -------
        dict
            ``energy`` ``(n_graphs,)`` eV; ``node_energy`` ``(n_nodes,)`` eV (E0
            included); ``node_interaction_energy`` ``(n_nodes,)`` eV (scaled and
            shifted, without E0); ``forces`` ``(n_nodes, 3)`` eV/Å (``-dE/dr``) when
            ``compute_forces``.
        """
        keep = intermediates if intermediates is not None else {}
        if batch is None:
            batch = torch.zeros(len(element), dtype=torch.long, device=element.device)
        num_graphs = int(batch.max()) + 1
        if compute_forces and not positions.requires_grad:
            positions = positions.clone().requires_grad_(True)
        onehot = torch.nn.functional.one_hot(element, self.config.num_elements)
        onehot = onehot.to(positions.dtype)
        sender, receiver = edge_index
        vectors = positions[receiver] - positions[sender]
        lengths = torch.linalg.norm(vectors, dim=-1, keepdim=True)
        keep.update(onehot=onehot, edge_vectors=vectors, edge_lengths=lengths)

        node_e0 = onehot @ self.atomic_energies
        h = self.node_embedding(onehot)
        edge_sh = o3.spherical_harmonics(self.sh_irreps, vectors, normalize=True,
                                         normalization="component")
        edge_radial = self.radial(lengths)
        keep.update(node_e0=node_e0, h_0=h, edge_sh=edge_sh, edge_radial=edge_radial)

        node_inter = torch.zeros_like(node_e0)
        for t, (interaction, product, readout) in enumerate(
            zip(self.interactions, self.products, self.readouts)
        ):
            a, sc = interaction(h, onehot, edge_sh, edge_radial, edge_index)
            h = product(a, element, sc)
            node_e_t = readout(h)[:, 0]
            node_inter = node_inter + node_e_t
            keep.update({f"A_{t + 1}": a, f"sc_{t + 1}": sc, f"h_{t + 1}": h,
                         f"node_energy_{t + 1}": node_e_t})
        node_inter = self.scale * node_inter + self.shift
        node_energy = node_e0 + node_inter
        energy = torch.zeros(num_graphs, dtype=positions.dtype, device=positions.device)
        energy = energy.index_add(0, batch, node_energy)
        out = {
            "energy": energy,
            "node_energy": node_energy,
            "node_interaction_energy": node_inter,
        }
        if compute_forces:
            (grad,) = torch.autograd.grad(
                energy.sum(), positions, create_graph=self.training
            )
            out["forces"] = -grad
        return out


def build_mace_torch(config: MACEConfig) -> torch.nn.Module:
    """The mace-torch model (``MACE`` or ``ScaleShiftMACE``) with the hyperparameters of ``config``.

    Uses the current default dtype (set ``torch.set_default_dtype(torch.float64)`` first for
    round-off comparisons) and the current torch random state for the initial weights.
    """
    from mace import modules

    c = config
    if not c.nonlinear_readout:
        raise ValueError("mace-torch always reads out the last layer with an MLP: "
                         "nonlinear_readout=False exists only in acecourse.mace.CourseMACE")
    first = (
        "RealAgnosticResidualInteractionBlock"
        if c.first_interaction_residual
        else "RealAgnosticInteractionBlock"
    )
    kwargs = {
        "r_max": c.r_max,
        "num_bessel": c.num_bessel,
        "num_polynomial_cutoff": c.num_polynomial_cutoff,
        "max_ell": c.max_ell,
        "interaction_cls": modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        "interaction_cls_first": modules.interaction_classes[first],
        "num_interactions": c.num_interactions,
        "num_elements": c.num_elements,
        "hidden_irreps": o3.Irreps(c.hidden_irreps),
        "MLP_irreps": o3.Irreps(c.MLP_irreps),
        "gate": torch.nn.functional.silu,
        "atomic_energies": np.array(c.atomic_energies),
        "avg_num_neighbors": c.avg_num_neighbors,
        "atomic_numbers": list(c.atomic_numbers),
        "correlation": c.correlation,
        "radial_type": "bessel",
        "radial_MLP": list(c.radial_MLP),
        # mace-torch's class default (True) uses cuEquivariance's reduced basis whenever
        # cuequivariance is installed; the rebuild follows the original coupling basis, which is
        # also mace_run_train's default (--use_reduced_cg False)
        "use_reduced_cg": False,
    }
    if c.scale_shift:
        return modules.ScaleShiftMACE(
            atomic_inter_scale=c.scale, atomic_inter_shift=c.shift, **kwargs
        )
    if c.scale != 1.0 or c.shift != 0.0:
        raise ValueError("scale/shift need scale_shift=True (mace's MACE has no scale_shift)")
    return modules.MACE(**kwargs)


def _copy(dst: torch.Tensor, src: torch.Tensor, name: str) -> None:
    if dst.shape != src.shape:
        raise ValueError(f"shape mismatch for {name}: {tuple(dst.shape)} vs {tuple(src.shape)}")
    with torch.no_grad():
        dst.copy_(src)


def load_mace_weights(course: CourseMACE, mace_model: torch.nn.Module) -> CourseMACE:
    """Copy every parameter and buffer that matters from a mace-torch model into ``course``.

    Raises ``ValueError`` if a shape differs or if a mace parameter was not used.
    """
    sd = dict(mace_model.state_dict())
    used = set()

    def take(name: str) -> torch.Tensor:
        used.add(name)
        return sd[name]

    _copy(course.atomic_energies, take("atomic_energies_fn.atomic_energies").reshape(-1),
          "atomic_energies")
    _copy(course.node_embedding.weight, take("node_embedding.linear.weight"), "embedding")
    for t, (inter, prod) in enumerate(zip(course.interactions, course.products)):
        p = f"interactions.{t}."
        _copy(inter.linear_up.weight, take(p + "linear_up.weight"), p + "linear_up")
        for k, w in enumerate(inter.radial_mlp.weights):
            _copy(w, take(p + f"conv_tp_weights.layer{k}.weight"), p + "radial")
        _copy(inter.linear.weight, take(p + "linear.weight"), p + "linear")
        _copy(inter.skip.weight, take(p + "skip_tp.weight"), p + "skip_tp")
        q = f"products.{t}."
        for j, ws in enumerate(prod.symmetric_contraction.weights):
            cname = q + f"symmetric_contractions.contractions.{j}."
            nu_max = len(ws)
            _copy(ws[nu_max - 1], take(cname + "weights_max"), cname + "weights_max")
            for idx in range(nu_max - 1):  # mace's weights.{idx} is correlation nu_max-1-idx
                _copy(ws[nu_max - 2 - idx], take(cname + f"weights.{idx}"), cname)
        _copy(prod.linear.weight, take(q + "linear.weight"), q + "linear")
    for t, readout in enumerate(course.readouts):
        p = f"readouts.{t}."
        if isinstance(readout, NonLinearReadout):
            _copy(readout.linear_1.weight, take(p + "linear_1.weight"), p + "linear_1")
            _copy(readout.linear_2.weight, take(p + "linear_2.weight"), p + "linear_2")
        else:
            _copy(readout.weight, take(p + "linear.weight"), p + "linear")
    if "scale_shift.scale" in sd:
        _copy(course.scale, take("scale_shift.scale").reshape(()), "scale")
        _copy(course.shift, take("scale_shift.shift").reshape(()), "shift")
    unused = [
        n for n, _ in mace_model.named_parameters() if n not in used and _.numel() > 0
    ]
    if unused:
        raise ValueError(f"mace parameters not loaded: {unused}")
    return course

