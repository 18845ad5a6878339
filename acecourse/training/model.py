"""Build the MACE model of a :class:`~acecourse.training.config.TrainConfig` with mace-torch.

``count_parameters`` is :func:`acecourse.nn.interaction.count_parameters`, re-exported here for
chapter 04/02, which imports it with :func:`build_model`.
"""

from __future__ import annotations

import numpy as np
import torch
from e3nn import o3
from mace import modules

from acecourse.dtypes import default_dtype
from acecourse.nn.interaction import count_parameters
from acecourse.training.config import TrainConfig
from acecourse.training.data import Z_TABLE

__all__ = ["build_model", "count_parameters", "parameter_groups", "to_cueq", "to_e3nn"]


def build_model(
    config: TrainConfig,
    atomic_energies: np.ndarray,
    scale: float,
    avg_num_neighbors: float,
) -> torch.nn.Module:
    """A ``mace.modules.ScaleShiftMACE`` as ``mace_run_train --model MACE`` builds it.

    The first interaction is ``RealAgnosticInteractionBlock``, the others
    ``RealAgnosticResidualInteractionBlock``; energies are ``E = sum_i E0[Z_i] + scale * e_i``
    with ``e_i`` the sum of the per-layer readouts (shift 0, as mace-torch's ``MACE`` model).
    The model is made in the config's dtype, on the CPU, with the e3nn backend.
    """
    with default_dtype(getattr(torch, config.dtype)):
        torch.manual_seed(config.seed)
        return modules.ScaleShiftMACE(
            r_max=config.r_max,
            num_bessel=config.num_bessel,
            num_polynomial_cutoff=config.num_polynomial_cutoff,
            max_ell=config.max_ell,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=config.num_interactions,
            num_elements=len(Z_TABLE),
            hidden_irreps=o3.Irreps(config.hidden_irreps),
            MLP_irreps=o3.Irreps(config.mlp_irreps),
            atomic_energies=np.asarray(atomic_energies, dtype=float),
            avg_num_neighbors=float(avg_num_neighbors),
            atomic_numbers=list(Z_TABLE.zs),
            correlation=config.correlation,
            gate=torch.nn.functional.silu,
            radial_MLP=list(config.radial_mlp),
            radial_type="bessel",
            use_reduced_cg=config.use_reduced_cg,
            atomic_inter_scale=float(scale),
            atomic_inter_shift=0.0,
        )


def to_cueq(model: torch.nn.Module, device: str = "cuda") -> torch.nn.Module:
    """The same model (same weights) on mace-torch's cuEquivariance backend."""
    from mace.cli.convert_e3nn_cueq import run as e3nn_to_cueq

    with default_dtype(torch.get_default_dtype()):  # the converter sets its own: restore ours
        return e3nn_to_cueq(model, device=device, return_model=True)


def to_e3nn(model: torch.nn.Module, device: str = "cpu") -> torch.nn.Module:
    """Back from cuEquivariance to the plain e3nn backend (for CPU use and saving)."""
    from mace.cli.convert_cueq_e3nn import run as cueq_to_e3nn

    with default_dtype(torch.get_default_dtype()):  # the converter sets its own: restore ours
        return cueq_to_e3nn(model, device=device, return_model=True)


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """mace-torch's optimiser groups: weight decay only on interaction linears and products."""
    decay, no_decay = [], []
    for name, param in model.interactions.named_parameters():
        (decay if ("linear.weight" in name or "skip_tp_full.weight" in name) else no_decay).append(
            param
        )
    wd = config.weight_decay
    groups = [
        ("embedding", model.node_embedding.parameters(), 0.0),
        ("interactions_decay", decay, wd),
        ("interactions_no_decay", no_decay, 0.0),
        ("products", model.products.parameters(), wd),
        ("readouts", model.readouts.parameters(), 0.0),
    ]
    return [{"name": n, "params": list(p), "weight_decay": w} for n, p, w in groups]
