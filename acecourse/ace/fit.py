r"""Ridge (Tikhonov) least-squares fit of a linear ACE model to energies and forces.

With the descriptor :math:`\mathbf{X}(s)` of a structure :math:`s` and its Jacobian
:math:`\mathbf{J}(s) = \partial\mathbf{X}/\partial\mathbf{r}`, the model
:math:`E = \mathbf{c}\cdot\mathbf{X} + E_0`, :math:`\mathbf{F} = -\mathbf{J}^\top\mathbf{c}`
is fitted by minimising

.. math::

    \sum_s (E_s - \mathbf{c}\cdot\mathbf{X}_s - E_0)^2
    + w_F^2 \sum_{s,a,\alpha} (F_{s a\alpha} + \mathbf{c}\cdot\mathbf{J}_{s a\alpha})^2
    + \lambda \sum_f G_{ff}\, c_f^2,

where :math:`G_{ff}` is the diagonal of the Gram matrix (the penalty acts on standardised
features).  The intercept :math:`E_0` is not penalised (energies and descriptors are centred).
Only the normal equations are stored (:class:`NormalEquations`), so the training set can be
streamed in chunks; one accumulation serves every :math:`(\lambda, w_F)` and every column subset
(e.g. the features of correlation order :math:`\le \nu`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from tqdm.auto import tqdm

from acecourse.ace.model import ACEDescriptor, frames_to_arrays


@dataclass
class LinearACEFit:
    """Fitted coefficients ``coef`` (per descriptor column, zero outside ``mask``) and ``e0`` (eV)."""

    coef: np.ndarray
    e0: float
    mask: np.ndarray
    ridge: float
    force_weight: float

    def predict(self, features: np.ndarray, jacobian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Energies (B,) in eV and forces (B, N, 3) in eV/Å from descriptor and Jacobian."""
        energies = features @ self.coef + self.e0
        forces = -np.einsum("bfnx,f->bnx", jacobian, self.coef)
        return energies, forces


class NormalEquations:
    """Running sums of the least-squares problem for energies and forces.

    Parameters
    ----------
    n_features
        Number of descriptor columns.
    """

    def __init__(self, n_features: int):
        p = n_features
        self.n_frames = 0
        self.sum_x = np.zeros(p)
        self.sum_y = 0.0
        self.gram_energy = np.zeros((p, p))  # sum x x^T (uncentred)
        self.rhs_energy = np.zeros(p)  # sum x y
        self.gram_force = np.zeros((p, p))  # sum over components of j j^T
        self.rhs_force = np.zeros(p)  # sum of -j * F

    def add(
        self, features: np.ndarray, energies: np.ndarray, jacobian: np.ndarray, forces: np.ndarray
    ) -> None:
        """Add frames: ``features (B, P)``, ``energies (B,)``, ``jacobian (B, P, N, 3)``, ``forces (B, N, 3)``."""
        self.n_frames += len(features)
        self.sum_x += features.sum(axis=0)
        self.sum_y += float(energies.sum())
        self.gram_energy += features.T @ features
        self.rhs_energy += features.T @ energies
        rows = jacobian.transpose(0, 2, 3, 1).reshape(-1, jacobian.shape[1])  # (B*N*3, P)
        self.gram_force += rows.T @ rows
        self.rhs_force += -(rows.T @ forces.reshape(-1))

    def solve(
        self, ridge: float, force_weight: float, mask: np.ndarray | None = None
    ) -> LinearACEFit:
        """Coefficients for one ``ridge`` (λ, relative to the Gram diagonal) and force weight.

        ``mask`` selects the descriptor columns used (others get coefficient 0).
        """
        p = len(self.sum_x)
        mask = np.ones(p, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        n = self.n_frames
        mean_x, mean_y = self.sum_x / n, self.sum_y / n
        gram_e = self.gram_energy - n * np.outer(mean_x, mean_x)
        rhs_e = self.rhs_energy - n * mean_x * mean_y
        gram = gram_e + force_weight**2 * self.gram_force
        rhs = rhs_e + force_weight**2 * self.rhs_force
        gram, rhs = gram[np.ix_(mask, mask)], rhs[mask]
        diag = np.diag(gram).copy()
        diag[diag <= 0] = 1.0
        scale = 1.0 / np.sqrt(diag)  # standardise the columns
        system = scale[:, None] * gram * scale[None, :]
        system[np.diag_indices_from(system)] += ridge
        solution = scipy.linalg.solve(system, scale * rhs, assume_a="pos")
        coef = np.zeros(p)
        coef[mask] = scale * solution
        e0 = mean_y - mean_x @ coef
        return LinearACEFit(coef, float(e0), mask, ridge, force_weight)


def descriptor_of_frames(
    descriptor: ACEDescriptor, frames, chunk_size: int = 10, progress: bool = False
):
    """Yield ``(features, energies, jacobian, forces)`` numpy chunks of a list of ASE frames."""
    positions, numbers, energies, forces = frames_to_arrays(frames)
    species = descriptor.species_index(numbers)
    starts = range(0, len(frames), chunk_size)
    for start in tqdm(starts, disable=not progress, desc="descriptor", leave=False):
        stop = start + chunk_size
        pos = torch.tensor(positions[start:stop], dtype=torch.float64)
        x, j = descriptor.features_and_jacobian(pos, species)
        yield x.numpy(), energies[start:stop], j.numpy(), forces[start:stop]


def errors(fit: LinearACEFit, chunks) -> dict[str, float]:
    """Energy MAE (meV per molecule), force MAE (meV/Å, per component) and RMSEs over chunks."""
    de, df = [], []
    for x, e, j, f in chunks:
        pe, pf = fit.predict(x, j)
        de.append(pe - e)
        df.append((pf - f).ravel())
    de, df = np.concatenate(de), np.concatenate(df)
    return {
        "energy_mae_meV": 1000 * float(np.mean(np.abs(de))),
        "force_mae_meV_per_A": 1000 * float(np.mean(np.abs(df))),
        "energy_rmse_meV": 1000 * float(np.sqrt(np.mean(de**2))),
        "force_rmse_meV_per_A": 1000 * float(np.sqrt(np.mean(df**2))),
    }


def order_masks(descriptor: ACEDescriptor) -> dict[int, np.ndarray]:
    """Descriptor columns with correlation order ≤ ν, for each ν of the descriptor."""
    nu_of_feature = np.array([nu for nu, _, _ in descriptor.basis.labels])
    nu_of_column = np.tile(nu_of_feature, len(descriptor.species))
    return {nu: nu_of_column <= nu for nu in descriptor.orders}


def learning_curve(
    descriptor: ACEDescriptor,
    train_frames,
    valid_frames,
    test_frames,
    train_sizes: list[int],
    ridges: list[float],
    force_weights: list[float],
    chunk_size: int = 10,
    progress: bool = False,
    keep: dict | None = None,
) -> dict:
    """Fit on nested training subsets and every correlation order; choose (λ, w_F) on validation.

    The training frames are used in the given order, so the subsets are nested (shuffle them
    before).  For each training size and each maximal correlation order ν, all
    ``(ridge, force_weight)`` pairs are solved and the one with the smallest validation error
    ``energy MAE + force MAE`` (meV, meV/Å) is kept and evaluated on the test frames.

    ``keep``, when a dict is given, receives the final :class:`NormalEquations` (``"normal"``),
    the validation and test chunks (``"valid"``, ``"test"``) and the fits (``"fits"``), for
    further experiments without recomputing the descriptors (memory: the test Jacobians are kept).

    Returns
    -------
    dict
        ``basis`` (sizes), ``timing`` (seconds), and ``results``: a list of records with
        ``n_train``, ``nu``, ``n_features``, the chosen hyper-parameters, validation and test
        errors, and the solve time.
    """
    sizes = sorted({int(n) for n in train_sizes})
    if sizes[-1] > len(train_frames):
        raise ValueError(
            f"largest training size {sizes[-1]} exceeds the {len(train_frames)} training frames"
        )
    masks = order_masks(descriptor)
    timing = {}
    t0 = time.perf_counter()
    valid = list(descriptor_of_frames(descriptor, valid_frames, chunk_size))
    normal = NormalEquations(descriptor.n_features)
    fits, records = [], []
    done = 0
    feature_time = time.perf_counter() - t0
    solve_time = 0.0
    for size in tqdm(sizes, disable=not progress, desc="training sizes"):
        t1 = time.perf_counter()
        for chunk in descriptor_of_frames(descriptor, train_frames[done:size], chunk_size):
            normal.add(*chunk)
        done = size
        feature_time += time.perf_counter() - t1
        for nu, mask in masks.items():
            t2 = time.perf_counter()
            best = None
            for ridge in ridges:
                for weight in force_weights:
                    fit = normal.solve(ridge, weight, mask)
                    err = errors(fit, valid)
                    score = err["energy_mae_meV"] + err["force_mae_meV_per_A"]
                    if best is None or score < best[0]:
                        best = (score, fit, err)
            elapsed = time.perf_counter() - t2
            solve_time += elapsed
            fits.append(best[1])
            records.append(
                {
                    "n_train": size,
                    "nu": nu,
                    "body_order": nu + 1,
                    "n_features": int(mask.sum()),
                    "ridge": best[1].ridge,
                    "force_weight": best[1].force_weight,
                    "valid": best[2],
                    "fit_seconds": elapsed,
                }
            )
    t3 = time.perf_counter()
    residuals = [([], []) for _ in fits]  # streamed: the test Jacobians are not kept
    kept_test = []
    for x, e, j, f in descriptor_of_frames(descriptor, test_frames, chunk_size, progress=progress):
        if keep is not None:
            kept_test.append((x, e, j, f))
        for (de, df), fit in zip(residuals, fits):
            pe, pf = fit.predict(x, j)
            de.append(pe - e)
            df.append((pf - f).ravel())
    for record, (de, df) in zip(records, residuals):
        de, df = np.concatenate(de), np.concatenate(df)
        record["test"] = {
            "energy_mae_meV": 1000 * float(np.mean(np.abs(de))),
            "force_mae_meV_per_A": 1000 * float(np.mean(np.abs(df))),
            "energy_rmse_meV": 1000 * float(np.sqrt(np.mean(de**2))),
            "force_rmse_meV_per_A": 1000 * float(np.sqrt(np.mean(df**2))),
        }
    timing["test_descriptor_seconds"] = time.perf_counter() - t3
    if keep is not None:
        keep.update(normal=normal, valid=valid, test=kept_test, fits=fits)
    timing["train_valid_descriptor_seconds"] = feature_time
    timing["solve_seconds"] = solve_time
    counts = descriptor.basis.count_by_order()
    return {
        "basis": {
            "species": list(descriptor.species),
            "r_cut": descriptor.r_cut,
            "orders": {str(nu): list(v) for nu, v in descriptor.orders.items()},
            "features_per_atom_by_order": {str(nu): c for nu, c in counts.items()},
            "n_features": descriptor.n_features,
        },
        "n_valid": len(valid_frames),
        "n_test": len(test_frames),
        "timing": timing,
        "results": records,
    }
