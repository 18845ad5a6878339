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

Some descriptor columns carry no information for a given molecule: they are identically zero
(ethanol has one O atom, so every O-centred feature with a factor from the O-neighbour channel
vanishes) or exact copies of another column (the ν = 1 pair sum of centre Z and neighbour z equals
that of centre z and neighbour Z).  :meth:`NormalEquations.redundant_columns` finds them on the
accumulated training data and :func:`learning_curve` leaves them out of every fit (they would only
split the ridge penalty between copies); :func:`design_rank` counts what is left by numerical rank
(:func:`design_singular_values` gives the singular values behind that count).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch
from tqdm import tqdm  # plain text bars: tqdm.auto warns in notebooks without ipywidgets

from acecourse.ace.model import ACEDescriptor, frames_to_arrays
from acecourse.metrics import error_metrics


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

    def redundant_columns(
        self, mask: np.ndarray | None = None, rtol: float = 1e-10
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Columns that are zero, or copies of another column, on all accumulated frames.

        A column counts as data: its entries in the energy rows and in the force rows (the
        Jacobian).  With the uncentred Gram matrix :math:`G` of both kinds of rows, column
        :math:`f` is zero when :math:`G_{ff} = 0`, and columns :math:`f, g` are equal when
        :math:`G_{ff} + G_{gg} - 2G_{fg} \le \mathrm{rtol}\,(G_{ff} + G_{gg})` (a squared
        distance: ``rtol = 1e-10`` means a relative difference below about 1e-5; copies that
        differ only by the order of a sum give about 1e-16).  ``mask`` restricts the search to a
        subset of the columns (e.g. those of correlation order ≤ ν), so that a kept copy always
        lies in the subset; columns outside it are marked neither zero nor duplicate.

        Returns
        -------
        (zero, duplicate)
            Boolean masks of length ``n_features``.  Of each set of equal columns the one with the
            lowest index is kept and the others are marked ``duplicate``; ``~zero & ~duplicate``
            are the distinct columns.
        """
        if self.n_frames == 0:
            raise ValueError("redundant_columns: no frames accumulated yet (call add first)")
        gram = self.gram_energy + self.gram_force
        diag = np.diag(gram).copy()
        inside = np.ones(len(diag), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        zero = (diag <= 0.0) & inside
        duplicate = np.zeros(len(diag), dtype=bool)
        nonzero = np.flatnonzero(~zero & inside)
        order = nonzero[np.argsort(diag[nonzero], kind="stable")]
        assigned = np.zeros(len(diag), dtype=bool)
        for a, f in enumerate(order):
            if assigned[f]:
                continue
            group = [f]
            for g in order[a + 1 :]:  # equal columns have equal norms: scan a narrow window
                if diag[g] > diag[f] * (1.0 + 1e-4):
                    break
                if not assigned[g] and diag[f] + diag[g] - 2.0 * gram[f, g] <= rtol * (
                    diag[f] + diag[g]
                ):
                    group.append(g)
            assigned[group] = True
            duplicate[sorted(group)[1:]] = True
        return zero, duplicate

    def solve(
        self, ridge: float, force_weight: float, mask: np.ndarray | None = None
    ) -> LinearACEFit:
        """Coefficients for one ``ridge`` (λ, relative to the Gram diagonal) and force weight.

        ``mask`` selects the descriptor columns used (others get coefficient 0).
        """
        return self.solve_ridges([ridge], force_weight, mask)[0]

    def solve_ridges(
        self, ridges: list[float], force_weight: float, mask: np.ndarray | None = None
    ) -> list[LinearACEFit | None]:
        """Fits for several ridges at one force weight; the standardised system is built once.

        An entry is ``None`` where the regularised system is not numerically positive definite
        (a ridge too small for a rank-deficient design); :meth:`solve` raises instead.
        """
        p = len(self.sum_x)
        mask = np.ones(p, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        n = self.n_frames
        mean_x, mean_y = self.sum_x / n, self.sum_y / n
        gram = self.gram_energy[np.ix_(mask, mask)] - n * np.outer(mean_x[mask], mean_x[mask])
        gram += force_weight**2 * self.gram_force[np.ix_(mask, mask)]
        rhs = self.rhs_energy[mask] - n * mean_x[mask] * mean_y
        rhs += force_weight**2 * self.rhs_force[mask]
        diag = np.diag(gram).copy()
        diag[diag <= 0] = 1.0
        scale = 1.0 / np.sqrt(diag)  # standardise the columns
        system = scale[:, None] * gram * scale[None, :]
        del gram
        fits: list[LinearACEFit | None] = []
        for ridge in ridges:
            regularised = system.copy()
            regularised[np.diag_indices_from(regularised)] += ridge
            try:
                factor = scipy.linalg.cho_factor(regularised, overwrite_a=True)
            except np.linalg.LinAlgError:
                if len(ridges) == 1:
                    raise
                fits.append(None)
                continue
            solution = scipy.linalg.cho_solve(factor, scale * rhs)
            coef = np.zeros(p)
            coef[mask] = scale * solution
            e0 = mean_y - mean_x @ coef
            fits.append(LinearACEFit(coef, float(e0), mask, ridge, force_weight))
        return fits


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


def _fit_errors(de: list[np.ndarray], df: list[np.ndarray]) -> dict[str, float]:
    """:func:`~acecourse.metrics.error_metrics` of the energy and force residuals (eV, eV/Å),
    with the key names of the linear fit's records (``force_...``, as in ``ace_fit.json``)."""
    zero = np.zeros(1)
    pred = {"energy_pred": np.concatenate(de), "energy_ref": zero}
    pred.update(forces_pred=np.concatenate(df), forces_ref=zero)
    metrics = error_metrics(pred)
    return {
        "energy_mae_meV": metrics["energy_mae_meV"],
        "force_mae_meV_per_A": metrics["forces_mae_meV_per_A"],
        "energy_rmse_meV": metrics["energy_rmse_meV"],
        "force_rmse_meV_per_A": metrics["forces_rmse_meV_per_A"],
    }


def errors(fit: LinearACEFit, chunks) -> dict[str, float]:
    """Energy MAE (meV per molecule), force MAE (meV/Å, per component) and RMSEs over chunks."""
    de, df = [], []
    for x, e, j, f in chunks:
        pe, pf = fit.predict(x, j)
        de.append(pe - e)
        df.append((pf - f).ravel())
    return _fit_errors(de, df)


def order_masks(descriptor: ACEDescriptor) -> dict[int, np.ndarray]:
    """Descriptor columns with correlation order ≤ ν, for each ν of the descriptor."""
    nu_of_feature = np.array([nu for nu, _, _ in descriptor.basis.labels])
    nu_of_column = np.tile(nu_of_feature, len(descriptor.species))
    return {nu: nu_of_column <= nu for nu in descriptor.orders}


def design_singular_values(
    chunks, mask: np.ndarray, forces: bool = True, intercept: bool = True
) -> tuple[np.ndarray, float]:
    """Singular values of the column-normalised least-squares design, and NumPy's rank threshold.

    The design has one row per energy, ``[x, 1]``, and, with ``forces``, one row per force
    component, ``[j, 0]`` (``intercept`` adds the column of the constant :math:`E_0`), restricted
    to the descriptor columns ``mask``.  Columns are scaled to unit norm, so the values do not
    depend on units.

    Parameters
    ----------
    chunks
        Iterable of ``(features, energies, jacobian, forces)`` as from :func:`descriptor_of_frames`.
    mask
        Boolean mask of the descriptor columns; zero columns must be excluded beforehand.

    Returns
    -------
    singular_values : array, descending
    threshold : float
        ``max(rows, columns) * eps * s_max``, the default tolerance of ``numpy.linalg.matrix_rank``.
    """
    mask = np.asarray(mask, dtype=bool)
    blocks = []
    for x, _, j, _ in chunks:
        energy_rows = x[:, mask]
        if intercept:
            energy_rows = np.hstack([energy_rows, np.ones((len(x), 1))])
        blocks.append(energy_rows)
        if forces:
            rows = j.transpose(0, 2, 3, 1).reshape(-1, j.shape[1])[:, mask]
            if intercept:
                rows = np.hstack([rows, np.zeros((len(rows), 1))])
            blocks.append(rows)
    design = np.vstack(blocks)
    norms = np.linalg.norm(design, axis=0)
    if np.any(norms == 0):
        raise ValueError("design_rank: the mask contains zero columns; drop them first")
    singular_values = np.linalg.svd(design / norms, compute_uv=False)
    threshold = max(design.shape) * np.finfo(design.dtype).eps * singular_values[0]
    return singular_values, float(threshold)


def design_rank(chunks, mask: np.ndarray, forces: bool = True, intercept: bool = True) -> int:
    """Numerical rank of the least-squares design of ``chunks`` restricted to the columns ``mask``.

    The number of singular values of :func:`design_singular_values` (same arguments) above NumPy's
    default threshold, ``max(rows, columns) * eps * s_max``, as ``numpy.linalg.matrix_rank``
    counts them: the rank in exact arithmetic up to float64 rounding, *of these rows*.  Where the
    singular values fall off without a gap, the count depends on the threshold and can still grow
    with more rows; look at the values themselves before reading it as a property of the basis.
    """
    singular_values, threshold = design_singular_values(chunks, mask, forces, intercept)
    return int(np.sum(singular_values > threshold))


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
    rank_frames: int = 0,
) -> dict:
    """Fit on nested training subsets and every correlation order; choose (λ, w_F) on validation.

    The training frames are used in the given order, so the subsets are nested (shuffle them
    before).  At each training size the zero and duplicate columns of the training data are found
    (:meth:`NormalEquations.redundant_columns`) and left out.  For each maximal correlation order ν,
    every ``(ridge, force_weight)`` pair of the grid is solved and the one with the smallest
    validation error ``energy MAE + force MAE`` (meV, meV/Å) is kept and evaluated on the test
    frames.

    ``keep``, when a dict is given, receives the final :class:`NormalEquations` (``"normal"``),
    the training, validation and test chunks (``"train"``, ``"valid"``, ``"test"``) and the fits
    (``"fits"``), for further experiments without recomputing the descriptors (memory: all
    Jacobians are kept).  ``rank_frames > 0`` computes :func:`design_rank` (energies and forces) of
    the distinct columns of each ν on the first ``rank_frames`` training frames.

    Returns
    -------
    dict
        ``basis`` (sizes), ``timing`` (seconds), ``ridges`` and ``force_weights`` (the grid),
        ``rank`` (when asked), and ``results``: a list of records with ``n_train``, ``nu``,
        ``n_columns`` (descriptor columns of order ≤ ν), ``n_zero``, ``n_duplicate``,
        ``n_features`` (the distinct columns fitted), the chosen hyper-parameters, ``grid`` (the
        validation score of every grid point; ``None`` where the solve failed), validation and
        test errors, and the solve time.
    """
    sizes = sorted({int(n) for n in train_sizes})
    if sizes[-1] > len(train_frames):
        raise ValueError(
            f"largest training size {sizes[-1]} exceeds the {len(train_frames)} training frames"
        )
    if not ridges or not force_weights:
        raise ValueError("learning_curve: give at least one ridge and one force weight")
    masks = order_masks(descriptor)
    timing = {}
    t0 = time.perf_counter()
    valid = list(descriptor_of_frames(descriptor, valid_frames, chunk_size))
    normal = NormalEquations(descriptor.n_features)
    fits, records, kept_train, rank_chunks = [], [], [], []
    done = 0
    feature_time = time.perf_counter() - t0
    solve_time = 0.0
    for size in tqdm(sizes, disable=not progress, desc="training sizes"):
        t1 = time.perf_counter()
        for chunk in descriptor_of_frames(descriptor, train_frames[done:size], chunk_size):
            normal.add(*chunk)
            if keep is not None:
                kept_train.append(chunk)
            n_ranked = sum(len(c[0]) for c in rank_chunks)
            if n_ranked < rank_frames:
                rank_chunks.append(tuple(a[: rank_frames - n_ranked] for a in chunk))
        done = size
        feature_time += time.perf_counter() - t1
        for nu, order_mask in masks.items():
            zero, duplicate = normal.redundant_columns(order_mask)
            mask = order_mask & ~zero & ~duplicate
            t2 = time.perf_counter()
            best, grid = None, []
            for weight in force_weights:
                for ridge, fit in zip(ridges, normal.solve_ridges(ridges, weight, mask)):
                    if fit is None:  # not positive definite at this ridge
                        grid.append({"ridge": ridge, "force_weight": weight, "valid_score": None})
                        continue
                    err = errors(fit, valid)
                    score = err["energy_mae_meV"] + err["force_mae_meV_per_A"]
                    grid.append({"ridge": ridge, "force_weight": weight, "valid_score": score})
                    if best is None or score < best[0]:
                        best = (score, fit, err)
            if best is None:
                raise np.linalg.LinAlgError(
                    f"no (ridge, force weight) of the grid gave a solvable system at n={size}, "
                    f"nu={nu}: use larger ridges"
                )
            elapsed = time.perf_counter() - t2
            solve_time += elapsed
            fits.append(best[1])
            records.append(
                {
                    "n_train": size,
                    "nu": nu,
                    "body_order": nu + 1,
                    "n_columns": int(order_mask.sum()),
                    "n_zero": int(zero.sum()),
                    "n_duplicate": int(duplicate.sum()),
                    "n_features": int(mask.sum()),
                    "ridge": best[1].ridge,
                    "force_weight": best[1].force_weight,
                    "grid": grid,
                    "valid": best[2],
                    "fit_seconds": elapsed,
                }
            )
    rank = {}
    if rank_frames > 0:
        t4 = time.perf_counter()
        for nu, order_mask in masks.items():
            zero, duplicate = normal.redundant_columns(order_mask)
            mask = order_mask & ~zero & ~duplicate
            rank[str(nu)] = {
                "n_frames": sum(len(c[0]) for c in rank_chunks),
                "distinct_columns": int(mask.sum()),
                "rank_with_intercept": design_rank(rank_chunks, mask),
            }
        timing["rank_seconds"] = time.perf_counter() - t4
        del rank_chunks
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
        record["test"] = _fit_errors(de, df)
    timing["test_descriptor_seconds"] = time.perf_counter() - t3
    if keep is not None:
        keep.update(normal=normal, train=kept_train, valid=valid, test=kept_test, fits=fits)
    timing["train_valid_descriptor_seconds"] = feature_time
    timing["solve_seconds"] = solve_time
    counts = descriptor.basis.count_by_order()
    result = {
        "basis": {
            "species": list(descriptor.species),
            "r_cut": descriptor.r_cut,
            "orders": {str(nu): list(v) for nu, v in descriptor.orders.items()},
            "features_per_atom_by_order": {str(nu): c for nu, c in counts.items()},
            "n_features": descriptor.n_features,
        },
        "n_valid": len(valid_frames),
        "n_test": len(test_frames),
        "ridges": [float(r) for r in ridges],
        "force_weights": [float(w) for w in force_weights],
        "timing": timing,
        "results": records,
    }
    if rank:
        result["rank"] = rank
    return result
