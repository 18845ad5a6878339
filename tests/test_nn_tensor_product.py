"""The hand-made tensor product equals e3nn's for the same weights (float64, 1e-10)."""

import math

import numpy as np
import pytest
import torch
from e3nn import o3

from acecourse.nn.interaction import uvu_instructions
from acecourse.nn.tensor_product import HandTensorProduct, e3nn_coupling_tensor

pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.mark.parametrize(
    "l1,l2,L", [(0, 0, 0), (1, 1, 0), (1, 1, 1), (1, 1, 2), (2, 1, 3), (2, 2, 2), (3, 2, 1)]
)
def test_coupling_matches_wigner_3j_up_to_sign(l1, l2, L):
    tensor, sign = e3nn_coupling_tensor(l1, l2, L)
    assert sign in (1, -1)
    np.testing.assert_allclose(tensor, o3.wigner_3j(l1, l2, L).numpy(), rtol=0, atol=1e-12)
    assert abs(np.linalg.norm(tensor) - 1.0) < 1e-12


def test_fully_connected_matches_e3nn():
    torch.manual_seed(0)
    irreps1, irreps2 = o3.Irreps("2x0e+3x1o+2x2e"), o3.Irreps("0e+1o+2e")
    irreps_out = o3.Irreps("3x0e+2x1o+2x1e+2x2e+1x3o")
    reference = o3.FullyConnectedTensorProduct(irreps1, irreps2, irreps_out)
    hand = HandTensorProduct(irreps1, irreps2, irreps_out, reference.instructions)
    assert hand.weight_numel == reference.weight_numel
    x, y = torch.randn(7, irreps1.dim), torch.randn(7, irreps2.dim)
    error = (hand(x, y, reference.weight) - reference(x, y)).abs().max()
    assert error < 1e-10
    for ins, coefficient in zip(reference.instructions, hand.path_coefficients(), strict=True):
        assert math.isclose(ins.path_weight, coefficient, rel_tol=1e-14)


def test_uvu_with_per_sample_weights_matches_e3nn():
    torch.manual_seed(1)
    irreps, irreps_sh = o3.Irreps("4x0e+4x1o+4x2e"), o3.Irreps.spherical_harmonics(2)
    irreps_mid, instructions = uvu_instructions(irreps, irreps_sh, irreps)
    reference = o3.TensorProduct(
        irreps, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False
    )
    hand = HandTensorProduct(irreps, irreps_sh, irreps_mid, instructions)
    x, y = torch.randn(5, irreps.dim), torch.randn(5, irreps_sh.dim)
    w = torch.randn(5, reference.weight_numel)
    assert (hand(x, y, w) - reference(x, y, w)).abs().max() < 1e-10


def test_selection_rules_enforced():
    with pytest.raises(ValueError, match="selection"):
        HandTensorProduct("1o", "1o", "1o", [(0, 0, 0, "uvw")])
