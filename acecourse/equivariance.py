"""One equivariance test for the whole course: rotations, reflections, translations, permutations.

A model of atoms is a function ``fn(positions, species)`` of the Cartesian positions
``(N, 3)`` (Å, float64) and the species ``(N,)`` (integers).  Physics asks it to respect the
symmetries of space and of identical particles:

* **rotations and reflections** ``r_i -> Q r_i`` with ``Q`` in O(3): an output of irreps ``ρ``
  must transform as ``f(Q r) = D^ρ(Q) f(r)``, where ``D^ρ`` is e3nn's representation matrix
  :meth:`e3nn.o3.Irreps.D_from_matrix`.  That matrix includes the parity: an ``"e"`` (even) irrep
  picks up ``(+1)^k`` and an ``"o"`` (odd) irrep ``(-1)^k`` under ``Q = (-1)^k R``.  In e3nn 0.4
  an ``"1o"`` block is the Cartesian vector ``(x, y, z)``, so forces ``(N, 3)`` are ``"1o"``
  per atom and ``D^{1o}(Q) = Q``.
* **translations** ``r_i -> r_i + t``: every output is unchanged.
* **permutations** of atoms (positions and species together), ``r_i -> r_{π(i)}``: a per-graph
  output is unchanged and a per-atom output is permuted the same way, ``f_i -> f_{π(i)}``.

:func:`check_equivariance` applies ``n_trials`` random transformations of each kind and returns
the largest absolute error of each kind; :func:`assert_equivariant` raises an
``AssertionError`` naming the broken symmetry.  :func:`forces_from_energy` turns an invariant
energy into forces by automatic differentiation (these are equivariant ``"1o"`` per atom).

Example
-------
>>> import torch
>>> def dipole(positions, species):
...     charges = torch.where(species == 1, 0.4, -0.4).to(positions.dtype)
...     return (charges[:, None] * (positions - positions.mean(0))).sum(0)
>>> positions = torch.randn(5, 3, dtype=torch.float64)
>>> species = torch.tensor([1, 1, 6, 8, 1])
>>> errors = assert_equivariant(dipole, positions, species, "1o")
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from e3nn import o3  # readable under torch >= 2.6: ``import acecourse`` allow-lists ``slice``

from acecourse.dtypes import default_dtype

__all__ = [
    "assert_equivariant",
    "check_equivariance",
    "forces_from_energy",
    "random_orthogonal_matrices",
]

ModelFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def random_orthogonal_matrices(
    n: int, rng: np.random.Generator | int | None = None, include_reflections: bool = True
) -> torch.Tensor:
    """Draw ``n`` random 3x3 orthogonal matrices (float64), uniform (Haar) on SO(3).

    Parameters
    ----------
    n : int
        Number of matrices.
    rng : numpy.random.Generator or int or None
        Random generator or seed (the result is reproducible for a given seed).
    include_reflections : bool
        If True, the matrices of odd index ``1, 3, 5, ...`` are improper, ``Q = -R`` with ``R`` a
        random rotation (``det Q = -1``: a rotation combined with the inversion), so that both
        kinds are always present; the even ones are proper rotations.  If False all are rotations.

    Returns
    -------
    torch.Tensor
        Shape ``(n, 3, 3)``, float64, ``Q @ Q.T = I``.

    Notes
    -----
    A Gaussian matrix ``A = QR`` (QR decomposition) with the signs of ``diag(R)`` moved into ``Q``
    gives a Haar-distributed orthogonal ``Q``; multiplying by ``det Q`` makes it a rotation
    (3 is odd, so ``det(-Q) = -det Q``).
    """
    generator = _as_generator(rng)
    gaussian = generator.standard_normal((n, 3, 3))
    q, r = np.linalg.qr(gaussian)
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    q = q * np.linalg.det(q)[:, None, None]  # now det = +1 for all
    if include_reflections:
        q[1::2] *= -1.0
    return torch.as_tensor(q, dtype=torch.float64)


def _infer_per_atom(output: torch.Tensor, n_atoms: int, dim: int) -> bool:
    if output.ndim == 2:
        return True
    return bool(output.ndim == 1 and dim == 1 and output.shape[0] == n_atoms and n_atoms != 1)


def _representation_matrix(irreps: o3.Irreps, matrix: torch.Tensor) -> torch.Tensor:
    """``irreps.D_from_matrix(matrix)`` computed in float64 whatever the default dtype."""
    with default_dtype(torch.float64):
        return irreps.D_from_matrix(matrix.to(torch.float64))


def _evaluate(
    fn: ModelFunction, positions: torch.Tensor, species: torch.Tensor, dim: int, per_atom: bool
) -> torch.Tensor:
    out = fn(positions, species)
    out = torch.as_tensor(out).detach().to(torch.float64)
    n_atoms = positions.shape[0]
    expected = (n_atoms, dim) if per_atom else (dim,)
    if out.numel() != int(np.prod(expected)):
        raise ValueError(
            f"fn returned shape {tuple(out.shape)}, expected {expected} for irreps of dimension "
            f"{dim} ({'per atom' if per_atom else 'per graph'}); check irreps_out and per_atom"
        )
    return out.reshape(expected)


def check_equivariance(
    fn: ModelFunction,
    positions: torch.Tensor | np.ndarray,
    species: torch.Tensor | np.ndarray,
    irreps_out: str | o3.Irreps,
    n_trials: int = 3,
    seed: int = 0,
    reflections: bool = True,
    permutations: bool = True,
    translations: bool = True,
    per_atom: bool | None = None,
) -> dict[str, float]:
    """Measure how far ``fn`` is from E(3) equivariance and permutation equivariance.

    Parameters
    ----------
    fn : callable
        ``fn(positions, species) -> output`` with ``positions`` a float64 tensor ``(N, 3)`` in Å
        and ``species`` a long tensor ``(N,)``.  The output is per graph, shape
        ``(irreps_out.dim,)`` (or a scalar for ``"0e"``), or per atom, shape
        ``(N, irreps_out.dim)`` (or ``(N,)`` for one scalar per atom).  ``fn`` may use autograd
        (it is not called under ``torch.no_grad``); outputs are detached.
    positions, species : tensor or array
        The configuration to test around; converted to float64 and long.
    irreps_out : str or e3nn.o3.Irreps
        How the output transforms, in e3nn's basis, e.g. ``"0e"`` (energy), ``"1o"`` (a vector
        such as a force or a dipole, components ``(x, y, z)``), ``"0e+1o"``, ``"8x0e+8x1o"``.
    n_trials : int
        Random transformations of each kind.
    seed : int
        Seed of the random rotations, translations and permutations.
    reflections : bool
        Also test improper matrices ``Q = -R`` (key ``"reflection"``).  Set False for a model that
        is only meant to be SO(3)-equivariant (e.g. one that uses a cross product).
    permutations, translations : bool
        Also test permutations of the atoms (key ``"permutation"``) and translations
        (key ``"translation"``; outputs must be unchanged).
    per_atom : bool or None
        Whether the output is one row per atom.  ``None`` infers it: a 2-D output is per atom,
        and a 1-D output of length ``N`` with ``irreps_out`` of dimension 1 is per atom;
        anything else is per graph.  Pass it explicitly when ``N`` equals ``irreps_out.dim``.

    Returns
    -------
    dict of str to float
        Maximum absolute error over the trials for each tested kind, among ``"rotation"``,
        ``"reflection"``, ``"translation"``, ``"permutation"``, in the units of the output.

    Notes
    -----
    For a rotation or reflection ``Q`` the error is ``max |f(Q r) - D(Q) f(r)|`` with
    ``D = irreps_out.D_from_matrix(Q)`` acting on each output row; positions are rows, so
    ``Q r_i`` is ``positions @ Q.T``.  Translations are drawn with a length of a few Å.
    """
    irreps = o3.Irreps(irreps_out)
    dim = irreps.dim
    positions = torch.as_tensor(positions, dtype=torch.float64).detach().clone()
    species = torch.as_tensor(species, dtype=torch.long).detach().clone()
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
    if species.shape != positions.shape[:1]:
        raise ValueError(
            f"species must have shape ({positions.shape[0]},), got {tuple(species.shape)}"
        )
    n_atoms = positions.shape[0]

    raw = torch.as_tensor(fn(positions.clone(), species.clone())).detach().to(torch.float64)
    if per_atom is None:
        per_atom = _infer_per_atom(raw, n_atoms, dim)
    reference = _evaluate(lambda p, s: raw, positions, species, dim, per_atom)

    generator = np.random.default_rng(seed)
    errors: dict[str, float] = {}

    def transformed_error(matrix: torch.Tensor) -> float:
        out = _evaluate(fn, positions @ matrix.T, species.clone(), dim, per_atom)
        d_matrix = _representation_matrix(irreps, matrix)
        expected = reference @ d_matrix.T
        return float((out - expected).abs().max())

    rotations = random_orthogonal_matrices(
        n_trials, generator, include_reflections=False
    )
    errors["rotation"] = max(transformed_error(q) for q in rotations)
    if reflections:
        improper = -random_orthogonal_matrices(
            n_trials, generator, include_reflections=False
        )
        errors["reflection"] = max(transformed_error(q) for q in improper)
    if translations:
        shifts = torch.as_tensor(
            generator.normal(scale=3.0, size=(n_trials, 3)), dtype=torch.float64
        )
        errors["translation"] = max(
            float(
                (_evaluate(fn, positions + t, species.clone(), dim, per_atom) - reference)
                .abs()
                .max()
            )
            for t in shifts
        )
    if permutations:
        perm_errors = []
        for _ in range(n_trials):
            perm = torch.as_tensor(generator.permutation(n_atoms), dtype=torch.long)
            out = _evaluate(fn, positions[perm], species[perm], dim, per_atom)
            expected = reference[perm] if per_atom else reference
            perm_errors.append(float((out - expected).abs().max()))
        errors["permutation"] = max(perm_errors)
    return errors


def assert_equivariant(
    fn: ModelFunction,
    positions: torch.Tensor | np.ndarray,
    species: torch.Tensor | np.ndarray,
    irreps_out: str | o3.Irreps,
    atol: float = 1e-10,
    **kwargs,
) -> dict[str, float]:
    """Like :func:`check_equivariance`, but raise ``AssertionError`` if any error exceeds ``atol``.

    Parameters
    ----------
    fn, positions, species, irreps_out
        As in :func:`check_equivariance`.
    atol : float
        Largest acceptable absolute error (output units).  ``1e-10`` suits float64 models with
        outputs of order one; float32 models need about ``1e-5``.
    **kwargs
        Passed to :func:`check_equivariance` (``n_trials``, ``seed``, ``reflections``,
        ``permutations``, ``translations``, ``per_atom``).

    Returns
    -------
    dict of str to float
        The errors, as returned by :func:`check_equivariance`.
    """
    errors = check_equivariance(fn, positions, species, irreps_out, **kwargs)
    failed = {kind: err for kind, err in errors.items() if not err <= atol}
    if failed:
        lines = [
            f"  {kind:12s} error {err:.2e}" + ("  > atol" if kind in failed else "")
            for kind, err in errors.items()
        ]
        raise AssertionError(
            f"fn is not equivariant as irreps {o3.Irreps(irreps_out)} (atol {atol:.0e}):\n"
            + "\n".join(lines)
        )
    return errors


def forces_from_energy(energy_fn: ModelFunction) -> ModelFunction:
    """Turn an energy model into a force model, ``F_i = -dE/dr_i`` by automatic differentiation.

    Parameters
    ----------
    energy_fn : callable
        ``energy_fn(positions, species)`` returning the total energy (eV; a scalar or a tensor whose
        sum is the energy).

    Returns
    -------
    callable
        ``forces(positions, species) -> (N, 3)`` in eV/Å (same dtype as ``positions``).  If the
        energy is invariant under E(3) and permutations, the forces are ``"1o"`` per atom:
        ``F(Q r) = Q F(r)`` (a reflection flips them like positions) and they permute with atoms.
    """

    def forces(positions: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        positions = positions.detach().clone().requires_grad_(True)
        energy = energy_fn(positions, species).sum()
        (gradient,) = torch.autograd.grad(energy, positions)
        return -gradient

    forces.__doc__ = f"Forces -dE/dr of {getattr(energy_fn, '__name__', 'the energy')} (eV/Å)."
    return forces
