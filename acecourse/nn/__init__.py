"""Equivariant neural networks with e3nn: radial basis, interaction layer, potential, trainer.

Modules
-------
``radial``
    Bessel radial basis (MACE's normalisation) with a smooth polynomial cutoff (NequIP's p = 6).
``tensor_product``
    A tensor product written by hand from the course's real coupling tensors, equal to e3nn's.
``interaction``
    A NequIP-style equivariant interaction layer and a small interatomic potential built from it.
``graph``
    Batches of molecules as graphs (edges within a cutoff).
``trainer``
    A small trainer on energies and forces (forces by automatic differentiation).
"""
