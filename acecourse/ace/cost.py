r"""The naive ν-tuple sum, to compare with the density trick.

Without the density trick an invariant of correlation order ν is a sum over ordered ν-tuples of
neighbours,

.. math:: B = \sum_{j_1,\dots,j_\nu} \sum_{m_1\dots m_\nu} \mathcal{C}_{m_1\dots m_\nu}
   \prod_{\xi=1}^{\nu} \phi_{k_\xi l_\xi m_\xi}(\mathbf{r}_{i j_\xi}),

which costs :math:`O(M^\nu)` for :math:`M` neighbours.  Because the sum factorises,
:math:`\sum_{j_1\dots j_\nu}\prod_\xi \phi(\mathbf{r}_{ij_\xi}) = \prod_\xi \sum_j \phi(\mathbf{r}_{ij})
= \prod_\xi A`, the same numbers come out of the atomic base in :math:`O(M)`
(:class:`acecourse.ace.basis.InvariantBasis`).  The tuples include repeated neighbours
(:math:`j_1 = j_2`): these "self-interaction" terms are part of ACE's product basis.
"""

from __future__ import annotations

import torch

from acecourse.ace.basis import InvariantBasis, atomic_base_from_neighbours


def naive_tuple_sum(
    basis: InvariantBasis,
    vectors: torch.Tensor,
    neighbour_species: torch.Tensor,
    r_cut: float,
    chunk: int = 16384,
) -> torch.Tensor:
    """Invariants of one environment by the explicit sum over ordered ν-tuples of neighbours.

    Parameters
    ----------
    basis
        The invariant basis (its groups give the coupling tensors).
    vectors
        Neighbour vectors (Å) of one atom, shape ``(M, 3)``.
    neighbour_species
        Species index of each neighbour, ``(M,)``.
    r_cut
        Cutoff (Å).
    chunk
        Tuples per vectorised step.

    Returns
    -------
    torch.Tensor
        ``(n_features,)``, equal to ``basis(atomic_base_from_neighbours(...))`` up to rounding.
    """
    n_max, l_max = basis.n_max, basis.l_max
    # one-particle basis of every neighbour separately: phi[j] = A of the single neighbour j
    phi = atomic_base_from_neighbours(
        vectors.unsqueeze(1), neighbour_species.unsqueeze(1), basis.n_species, n_max, l_max, r_cut
    )  # (M, K, L2)
    n_neighbours = len(vectors)
    letters = "abcdefgh"
    out = []
    for group, (channels, tensors) in zip(
        basis.groups, basis._tensors(vectors.dtype, vectors.device)
    ):
        nu = len(group.ls)
        slices = [slice(l * l, (l + 1) * (l + 1)) for l in group.ls]
        per_position = [phi[:, channels[:, t], slices[t]] for t in range(nu)]  # (M, T, d_t)
        spec = ",".join(f"xT{letters[t]}" for t in range(nu)) + ",r" + letters[:nu] + "->Tr"
        total = torch.zeros(len(channels), len(tensors), dtype=vectors.dtype)
        n_tuples = n_neighbours**nu
        for first in range(0, n_tuples, chunk):
            flat = torch.arange(first, min(first + chunk, n_tuples))  # tuple numbers
            factors = []
            for t in range(nu):  # digit t of the tuple number in base M is the neighbour j_t
                j_t = (
                    torch.div(flat, n_neighbours ** (nu - 1 - t), rounding_mode="floor")
                    % n_neighbours
                )
                factors.append(per_position[t][j_t])  # (x, T, d_t)
            total = total + torch.einsum(spec, *factors, tensors)
        out.append(total.reshape(-1))
    return torch.cat(out)
