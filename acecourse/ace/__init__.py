"""The Atomic Cluster Expansion, built from the course's maths (Phase 1).

* :mod:`acecourse.ace.radial` -- Bessel radial basis with a polynomial cutoff envelope.
* :mod:`acecourse.ace.basis` -- atomic base ``A_{i,klm}`` (density trick, element channels) and
  the symmetrised invariant basis ``B`` of correlation order 1..4.
* :mod:`acecourse.ace.coupling` -- generalised Clebsch-Gordan coupling paths and their
  permutation-symmetrised, linearly independent combinations.
* :mod:`acecourse.ace.counting` -- independent counts: characters integrated over SO(3), and the
  numerical rank of evaluated features.
* :mod:`acecourse.ace.cost` -- the naive sum over ν-tuples of neighbours (for the cost study).
* :mod:`acecourse.ace.model` and :mod:`acecourse.ace.fit` -- the linear ACE model of molecules,
  its Jacobian, and the ridge fit to energies and forces with a learning curve.
"""

from acecourse.ace.basis import (
    InvariantBasis,
    atomic_base_from_neighbours,
    atomic_base_of_molecules,
)
from acecourse.ace.counting import character_invariant_count, numerical_rank
from acecourse.ace.fit import LinearACEFit, NormalEquations, learning_curve
from acecourse.ace.model import ACEDescriptor
from acecourse.ace.radial import bessel_radial_basis, polynomial_envelope

__all__ = [
    "ACEDescriptor",
    "InvariantBasis",
    "LinearACEFit",
    "NormalEquations",
    "atomic_base_from_neighbours",
    "atomic_base_of_molecules",
    "bessel_radial_basis",
    "character_invariant_count",
    "learning_curve",
    "numerical_rank",
    "polynomial_envelope",
]
