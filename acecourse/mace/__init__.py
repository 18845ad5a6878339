"""MACE dissected and rebuilt (chapter 03): blocks, model, weight loader, graphs."""

# mace-torch first, without its import-time cuEquivariance notice (see acecourse._mace_import).
import acecourse._mace_import  # noqa: F401, I001

from acecourse.mace.blocks import (  # noqa: F401
    ElementLinear,
    Interaction,
    NonLinearReadout,
    ProductBasis,
    RadialEmbedding,
    RadialMLP,
    SymmetricContraction,
    bessel_basis,
    coupling_tensor,
    channelwise_tp_irreps,
    polynomial_cutoff,
)
from acecourse.mace.counting import independent_couplings, symmetric_coupling_count  # noqa: F401
from acecourse.mace.graph import atoms_to_inputs, mace_batch, neighbour_graph  # noqa: F401
from acecourse.mace.model import (  # noqa: F401
    CourseMACE,
    MACEConfig,
    build_mace_torch,
    count_parameters,
    load_mace_weights,
)
