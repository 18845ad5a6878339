"""The two pieces of phase 00 that the ACE basis needs, in one place.

* :func:`spherical_harmonics` — the course's real spherical harmonics, differentiable in torch
  (:func:`acecourse.maths.spherical_harmonics.real_spherical_harmonics_torch`).
* :func:`coupling_tensor` — the real coupling tensor in the same basis
  (:func:`acecourse.maths.clebsch_gordan.real_coupling_tensor`), cached.

Nothing is re-derived here: the conventions are those of ``CONTRIBUTING.md``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from acecourse.maths.clebsch_gordan import real_coupling_tensor
from acecourse.maths.spherical_harmonics import real_spherical_harmonics_torch


def spherical_harmonics(l_max: int, vectors: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics of ``vectors`` (..., 3), shape (..., (l_max+1)**2), differentiable."""
    return real_spherical_harmonics_torch(l_max, vectors)


@cache
def coupling_tensor(l1: int, l2: int, big_l: int) -> np.ndarray:
    """``real_coupling_tensor(l1, l2, L)`` of shape (2l1+1, 2l2+1, 2L+1), Frobenius norm 1."""
    return np.asarray(real_coupling_tensor(l1, l2, big_l), dtype=np.float64)
