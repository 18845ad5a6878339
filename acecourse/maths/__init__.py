"""Mathematical foundations of the course, written once and imported by every later chapter.

* :mod:`acecourse.maths.rotations` -- rotation matrices, axis-angle, Euler ZYZ, Haar-random
  rotations, inversion and parity.
* :mod:`acecourse.maths.spherical_harmonics` -- associated Legendre functions by recursion, the
  course's real spherical harmonics (numpy and differentiable torch), the complex-to-real and
  e3nn-to-course changes of basis.
* :mod:`acecourse.maths.wigner` -- Wigner D matrices in the course's real basis.
* :mod:`acecourse.maths.clebsch_gordan` -- Clebsch-Gordan coefficients (Racah's formula, exact
  rationals) and the real coupling tensors.

All functions work in float64.  The conventions are stated in each module docstring and in
``CONTRIBUTING.md``.
"""

# ``clebsch_gordan`` (the function) is deliberately not re-exported here: the name belongs to the
# submodule, ``from acecourse.maths.clebsch_gordan import clebsch_gordan``.
from acecourse.maths.clebsch_gordan import (
    clebsch_gordan_tensor,
    real_coupling_tensor,
)
from acecourse.maths.rotations import (
    axis_angle_to_matrix,
    euler_zyz_to_matrix,
    inversion_matrix,
    is_rotation,
    matrix_to_axis_angle,
    matrix_to_euler_zyz,
    random_orthogonal,
    random_rotation,
)
from acecourse.maths.spherical_harmonics import (
    associated_legendre,
    complex_to_real_matrix,
    e3nn_to_course_basis,
    real_spherical_harmonics,
    real_spherical_harmonics_torch,
)
from acecourse.maths.wigner import wigner_D

__all__ = [
    "associated_legendre",
    "axis_angle_to_matrix",
    "clebsch_gordan_tensor",
    "complex_to_real_matrix",
    "e3nn_to_course_basis",
    "euler_zyz_to_matrix",
    "inversion_matrix",
    "is_rotation",
    "matrix_to_axis_angle",
    "matrix_to_euler_zyz",
    "random_orthogonal",
    "random_rotation",
    "real_coupling_tensor",
    "real_spherical_harmonics",
    "real_spherical_harmonics_torch",
    "wigner_D",
]
