r"""Radial basis functions with a smooth cutoff.

The one-particle basis of ACE is :math:`\phi_{nlm}(\mathbf{r}) = R_n(r)\, Y_l^m(\hat{\mathbf{r}})`.
The course uses the Bessel radial basis of DimeNet/MACE,

.. math::

    R_n(r) = \sqrt{\frac{2}{r_c}}\, \frac{\sin(n\pi r / r_c)}{r}\, f_{\mathrm{cut}}(r),
    \qquad n = 1, \dots, n_{\max},

multiplied by the polynomial envelope :math:`f_{\mathrm{cut}}` of Klicpera et al. (DimeNet),
which goes to zero at :math:`r_c` together with its first two derivatives, so that energies and
forces are smooth when a neighbour leaves the cutoff sphere.  All functions accept torch tensors
(float64 for checks) and are differentiable, so forces follow from autograd.
"""

from __future__ import annotations

import math

import torch


def polynomial_envelope(r: torch.Tensor, r_cut: float, p: int = 6) -> torch.Tensor:
    r"""Smooth cutoff :math:`f(u) = 1 - \tfrac{(p+1)(p+2)}{2}u^p + p(p+2)u^{p+1} - \tfrac{p(p+1)}{2}u^{p+2}`.

    Parameters
    ----------
    r
        Distances (Å), any shape.
    r_cut
        Cutoff radius :math:`r_c` (Å); the envelope is exactly zero for :math:`r \ge r_c`.
    p
        Polynomial order; :math:`f`, :math:`f'` and :math:`f''` vanish at :math:`r_c`.

    Returns
    -------
    torch.Tensor
        Same shape as ``r``, dimensionless, equal to 1 at ``r = 0``.
    """
    u = r / r_cut
    f = (
        1.0
        - (p + 1) * (p + 2) / 2 * u**p
        + p * (p + 2) * u ** (p + 1)
        - p * (p + 1) / 2 * u ** (p + 2)
    )
    return torch.where(u < 1.0, f, torch.zeros_like(f))


def bessel_radial_basis(
    r: torch.Tensor, n_max: int, r_cut: float, p: int = 6
) -> torch.Tensor:
    r"""Bessel radial basis :math:`R_n(r)` with polynomial envelope, shape ``(*r.shape, n_max)``.

    Parameters
    ----------
    r
        Distances (Å), strictly positive where they matter (``sin(x)/x`` is finite at 0 but its
        autograd is not: keep self-pairs away from ``r = 0``).
    n_max
        Number of radial functions, :math:`n = 1, \dots, n_{\max}`.
    r_cut
        Cutoff radius (Å).
    p
        Envelope order (see :func:`polynomial_envelope`).

    Returns
    -------
    torch.Tensor
        Values in Å^{-3/2} (the prefactor makes :math:`\int_0^{r_c} R_n R_{n'} r^2 dr = \delta_{nn'}`
        without the envelope).
    """
    n = torch.arange(1, n_max + 1, dtype=r.dtype, device=r.device)
    r_ = r.unsqueeze(-1)
    bessel = math.sqrt(2.0 / r_cut) * torch.sin(n * math.pi * r_ / r_cut) / r_
    return bessel * polynomial_envelope(r, r_cut, p).unsqueeze(-1)
