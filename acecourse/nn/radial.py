"""Radial basis of an interatomic distance: Bessel functions times a smooth cutoff.

NequIP (Batzner et al., 2022) and MACE (Batatia et al., 2022) embed a distance ``r`` (Å) in
``N`` Bessel functions.  We use MACE's form (mace-torch's ``BesselBasis``, fixed frequencies)

.. math::  B_n(r) = \\sqrt{2/r_c}\\, \\sin(n \\pi r / r_c) / r, \\qquad n = 1, \\dots, N;

NequIP's ``BesselBasis`` has the prefactor ``2 / r_c`` instead of ``sqrt(2 / r_c)`` and trains the
frequencies ``n pi / r_c`` by default.  The basis is multiplied by the polynomial envelope of
DimeNet (Klicpera et al., 2020) with ``p = 6`` (NequIP's default; MACE uses ``p = 5``),

.. math::  u(x) = 1 - \\tfrac{(p+1)(p+2)}{2} x^p + p(p+2) x^{p+1} - \\tfrac{p(p+1)}{2} x^{p+2},
           \\quad x = r / r_c,

which goes to zero at ``r = r_c`` with its first two derivatives, so energies and forces are
smooth when an atom crosses the cutoff.
"""

from __future__ import annotations

import math

import torch


class BesselBasis(torch.nn.Module):
    """``B_n(r) = sqrt(2/r_c) sin(n pi r / r_c) / r`` for ``n = 1..n_basis``; input in Å."""

    def __init__(self, cutoff: float, n_basis: int = 8) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.n_basis = int(n_basis)
        self.register_buffer("frequencies", math.pi * torch.arange(1, n_basis + 1) / self.cutoff)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """Shape ``(..., )`` distances (Å) -> ``(..., n_basis)``."""
        r = distances[..., None]
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies.to(r.dtype) * r) / r


class PolynomialCutoff(torch.nn.Module):
    """The smooth envelope ``u(r / r_c)`` (1 at 0, 0 with two zero derivatives at ``r_c``)."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = distances / self.cutoff
        envelope = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * x**p
            + p * (p + 2) * x ** (p + 1)
            - 0.5 * p * (p + 1) * x ** (p + 2)
        )
        return envelope * (x < 1.0).to(distances.dtype)


class RadialEmbedding(torch.nn.Module):
    """Bessel basis times the cutoff envelope: ``(n_edges,)`` Å -> ``(n_edges, n_basis)``."""

    def __init__(self, cutoff: float, n_basis: int = 8, p: int = 6) -> None:
        super().__init__()
        self.bessel = BesselBasis(cutoff, n_basis)
        self.envelope = PolynomialCutoff(cutoff, p)

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        return self.bessel(distances) * self.envelope(distances)[..., None]
