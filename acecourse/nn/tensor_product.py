r"""A tensor product of irreps written by hand from the course's real coupling tensors.

For two features ``x`` (irreps ``irreps_in1``) and ``y`` (irreps ``irreps_in2``), a path
``(l_1, l_2) -> L`` couples channel ``u`` of block ``i_1`` and channel ``v`` of block ``i_2``:

.. math::

    z_{w, M} = \sum_{\text{paths} \to \text{out}} c_{\text{path}}
               \sum_{u, v} W_{uvw} \sum_{m_1, m_2} C^{l_1 l_2 L}_{m_1 m_2 M}\, x_{u, m_1}\, y_{v, m_2}

("uvw": every pair of input channels feeds every output channel) or, with ``W_{uv}`` and
``w = u``, channel-wise ("uvu").  ``C`` is :func:`acecourse.maths.clebsch_gordan.real_coupling_tensor`
(unit Frobenius norm) moved to e3nn's basis:

.. math:: C^{e3nn}_{abc} = s \sum_{ijk} C_{ijk} B^{l_1}_{ia} B^{l_2}_{jb} B^{L}_{kc},

with ``B = e3nn_to_course_basis(l)`` (orthogonal: ``course = B @ e3nn``) and ``s = ±1`` the
overall sign of e3nn's ``wigner_3j`` relative to ours (an arbitrary convention, read off once
by :func:`e3nn_coupling_tensor`).

Normalisation (e3nn's defaults, ``irrep_normalization="component"``,
``path_normalization="element"``): with inputs and weights of unit-variance components,

* one path's output components have variance ``1 / (2L+1)`` times the number of terms, because
  ``sum_{m_1 m_2 M} C^2 = 1`` spread over ``2L+1`` outputs; multiplying by ``sqrt(2L+1)``
  restores unit variance ("component");
* the number of terms that add up in one output component is the fan-in
  ``n = sum_{paths -> out} (mul_1 mul_2 for "uvw", mul_2 for "uvu")``; dividing by ``sqrt(n)``
  restores it again ("element").

So ``c_path = sqrt((2L+1) / n)``, the same for all paths into one output block.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from e3nn import o3

from acecourse.dtypes import default_dtype
from acecourse.maths.clebsch_gordan import real_coupling_tensor
from acecourse.maths.spherical_harmonics import e3nn_to_course_basis


@cache
def _e3nn_coupling(l1: int, l2: int, L: int) -> tuple[np.ndarray, int]:
    C = real_coupling_tensor(l1, l2, L)
    B1, B2, BL = (e3nn_to_course_basis(l) for l in (l1, l2, L))
    rotated = np.einsum("ijk,ia,jb,kc->abc", C, B1, B2, BL)
    with default_dtype(torch.float64):
        reference = o3.wigner_3j(l1, l2, L).numpy()
    sign = 1 if np.sum(rotated * reference) > 0 else -1
    mismatch = np.abs(sign * rotated - reference).max()
    if mismatch > 1e-12:
        raise RuntimeError(f"coupling ({l1},{l2},{L}) differs from e3nn's by {mismatch:.1e}")
    return sign * rotated, sign


def e3nn_coupling_tensor(l1: int, l2: int, L: int) -> tuple[np.ndarray, int]:
    """The course's real coupling tensor in e3nn's basis, and the sign ``s`` that aligns it.

    Returns ``(C_e3nn, s)`` with ``C_e3nn`` of shape ``(2l1+1, 2l2+1, 2L+1)``.  The sign is
    the one convention the course's construction leaves open; a ``RuntimeError`` is raised if,
    beyond that sign, the tensor differs from ``e3nn.o3.wigner_3j`` by more than ``1e-12``.
    """
    tensor, sign = _e3nn_coupling(int(l1), int(l2), int(L))
    return tensor.copy(), sign


def path_fan_in(
    irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, instructions: list[tuple], i_out: int
) -> int:
    """Number of weighted terms that add up in one component of output block ``i_out``."""
    total = 0
    for i1, i2, io, mode, *_ in instructions:
        if io == i_out:
            total += {"uvw": irreps_in1[i1].mul * irreps_in2[i2].mul, "uvu": irreps_in2[i2].mul}[
                mode
            ]
    return total


class HandTensorProduct:
    """Tensor product with e3nn's instruction format and normalisation, computed with einsum.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : e3nn irreps (strings or ``o3.Irreps``)
    instructions : list of ``(i_in1, i_in2, i_out, mode)`` or e3nn's
        ``(i_in1, i_in2, i_out, mode, has_weight)``; ``mode`` is ``"uvw"`` or ``"uvu"``, every path
        is weighted.

    Notes
    -----
    The weight vector is the concatenation, in instruction order, of each path's weights
    flattened from shape ``(mul_1, mul_2, mul_out)`` ("uvw") or ``(mul_1, mul_2)`` ("uvu"):
    e3nn's layout, so the same vector can be given to both.
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions: list[tuple]) -> None:
        self.irreps_in1 = o3.Irreps(irreps_in1)
        self.irreps_in2 = o3.Irreps(irreps_in2)
        self.irreps_out = o3.Irreps(irreps_out)
        self.instructions = [tuple(ins[:4]) for ins in instructions]
        self.paths = []
        for i1, i2, io, mode in self.instructions:
            mul1, ir1 = self.irreps_in1[i1]
            mul2, ir2 = self.irreps_in2[i2]
            mulo, iro = self.irreps_out[io]
            if ir1.p * ir2.p != iro.p or iro not in ir1 * ir2:
                raise ValueError(f"path {ir1} x {ir2} -> {iro} breaks the selection rules")
            if mode == "uvw":
                shape = (mul1, mul2, mulo)
            elif mode == "uvu":
                if mul1 != mulo:
                    raise ValueError(f"'uvu' needs mul_in1 == mul_out, got {mul1} and {mulo}")
                shape = (mul1, mul2)
            else:
                raise ValueError(f"mode must be 'uvw' or 'uvu', got {mode!r}")
            fan_in = path_fan_in(self.irreps_in1, self.irreps_in2, self.instructions, io)
            coefficient = math.sqrt(iro.dim / fan_in)
            coupling = torch.as_tensor(e3nn_coupling_tensor(ir1.l, ir2.l, iro.l)[0])
            self.paths.append((i1, i2, io, mode, shape, coefficient, coupling))
        self.weight_numel = sum(math.prod(p[4]) for p in self.paths)

    def path_coefficients(self) -> list[float]:
        """``c_path = sqrt((2L+1) / fan_in)`` of every instruction."""
        return [p[5] for p in self.paths]

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x1 (..., dim1)``, ``x2 (..., dim2)``, ``weights (weight_numel,)`` or
        ``(..., weight_numel)`` -> ``(..., irreps_out.dim)``."""
        batch_shape = x1.shape[:-1]
        blocks1 = [
            x1[..., s].reshape(*batch_shape, m, ir.dim)
            for s, (m, ir) in zip(self.irreps_in1.slices(), self.irreps_in1, strict=True)
        ]
        blocks2 = [
            x2[..., s].reshape(*batch_shape, m, ir.dim)
            for s, (m, ir) in zip(self.irreps_in2.slices(), self.irreps_in2, strict=True)
        ]
        outputs = [
            torch.zeros(*batch_shape, m, ir.dim, dtype=x1.dtype) for m, ir in self.irreps_out
        ]
        offset = 0
        for i1, i2, io, mode, shape, coefficient, coupling in self.paths:
            n = math.prod(shape)
            w = weights[..., offset : offset + n]
            w = w.reshape(*weights.shape[:-1], *shape)
            offset += n
            C = coupling.to(x1.dtype)
            x, y = blocks1[i1], blocks2[i2]
            if mode == "uvw":
                path = torch.einsum("...uvw,ijk,...ui,...vj->...wk", w, C, x, y)
            else:
                path = torch.einsum("...uv,ijk,...ui,...vj->...uk", w, C, x, y)
            outputs[io] = outputs[io] + coefficient * path
        return torch.cat([o.reshape(*batch_shape, -1) for o in outputs], dim=-1)
