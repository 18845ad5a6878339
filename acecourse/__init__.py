"""Shared code of the Multi-ACE Learning Roadmap course.

Subpackages follow mace-torch's split: ``maths`` (rotations, spherical harmonics,
Wigner D, Clebsch-Gordan), ``data`` (datasets), ``training`` (the MACE training command),
``plotting`` (the course's figure style).  Notebooks import from here; nothing is copied.
"""

__version__ = "0.1.0"
