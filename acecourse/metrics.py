"""Errors of predicted energies and forces: the one set of metrics every chapter reports."""

from __future__ import annotations

import numpy as np
from ase.data import chemical_symbols


def error_metrics(pred: dict[str, np.ndarray], numbers=None) -> dict[str, float]:
    """MAE, RMSE and mean signed error of energies (meV) and force components (meV/Å).

    Parameters
    ----------
    pred
        ``energy_ref`` and ``energy_pred`` (``(n_frames,)``, eV per molecule), ``forces_ref``
        and ``forces_pred`` (eV/Å): ``(n_frames, n_atoms, 3)`` for frames of one molecule, which
        adds the per-atom energy errors, or any shape (e.g. ``(total atoms, 3)``).
    numbers
        Atomic numbers of the molecule's atoms (``n_atoms``): adds the force MAE of each element,
        ``forces_mae_meV_per_A_<symbol>``.

    Returns
    -------
    dict
        ``n_frames``, ``energy_mae_meV``, ``energy_rmse_meV``, ``energy_mean_error_meV``
        (prediction minus reference: a constant offset keeps its sign), ``forces_mae_meV_per_A``,
        ``forces_rmse_meV_per_A``; for 3-D forces also ``energy_mae_meV_per_atom`` and
        ``energy_rmse_meV_per_atom`` (the molecule's errors divided by its number of atoms).
    """
    de = 1000.0 * (np.asarray(pred["energy_pred"]) - np.asarray(pred["energy_ref"]))
    df = 1000.0 * (np.asarray(pred["forces_pred"]) - np.asarray(pred["forces_ref"]))
    out = {
        "n_frames": int(de.size),
        "energy_mae_meV": float(np.mean(np.abs(de))),
        "energy_rmse_meV": float(np.sqrt(np.mean(de**2))),
        "energy_mean_error_meV": float(np.mean(de)),
        "forces_mae_meV_per_A": float(np.mean(np.abs(df))),
        "forces_rmse_meV_per_A": float(np.sqrt(np.mean(df**2))),
    }
    if df.ndim == 3:
        out["energy_mae_meV_per_atom"] = out["energy_mae_meV"] / df.shape[1]
        out["energy_rmse_meV_per_atom"] = out["energy_rmse_meV"] / df.shape[1]
    if numbers is not None:
        numbers = np.asarray(numbers)
        for z in sorted({int(z) for z in numbers}):
            key = f"forces_mae_meV_per_A_{chemical_symbols[z]}"
            out[key] = float(np.mean(np.abs(df[:, numbers == z])))
    return out
