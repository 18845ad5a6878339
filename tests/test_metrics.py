"""Tests of ``acecourse.metrics.error_metrics``, the one error report of the course."""

from __future__ import annotations

import numpy as np
import pytest

from acecourse.metrics import error_metrics


def test_error_metrics_of_a_hand_computed_case() -> None:
    """Two frames of a molecule H, O: energy errors +1 and -3 meV, force errors on H only."""
    forces_ref = np.zeros((2, 2, 3))
    forces_pred = forces_ref.copy()
    forces_pred[:, 0, 0] = [0.004, -0.002]  # eV/Å, atom 0 (H), x component
    pred = {
        "energy_ref": np.array([-10.0, -20.0]),
        "energy_pred": np.array([-10.0 + 0.001, -20.0 - 0.003]),
        "forces_ref": forces_ref,
        "forces_pred": forces_pred,
    }
    m = error_metrics(pred, numbers=[1, 8])
    assert m["n_frames"] == 2
    assert m["energy_mae_meV"] == pytest.approx(2.0, abs=1e-9)
    assert m["energy_rmse_meV"] == pytest.approx(np.sqrt(5.0), abs=1e-9)
    assert m["energy_mean_error_meV"] == pytest.approx(-1.0, abs=1e-9)  # keeps the sign
    assert m["energy_mae_meV_per_atom"] == pytest.approx(1.0, abs=1e-9)
    assert m["forces_mae_meV_per_A"] == pytest.approx(6.0 / 12, abs=1e-9)
    assert m["forces_rmse_meV_per_A"] == pytest.approx(np.sqrt(20.0 / 12), abs=1e-9)
    assert m["forces_mae_meV_per_A_H"] == pytest.approx(6.0 / 6, abs=1e-9)
    assert m["forces_mae_meV_per_A_O"] == 0.0


def test_flat_forces_give_no_per_atom_energy() -> None:
    pred = {"energy_ref": np.zeros(3), "energy_pred": np.ones(3)}
    pred.update(forces_ref=np.zeros((27, 3)), forces_pred=np.zeros((27, 3)))
    m = error_metrics(pred)
    assert m["energy_mae_meV"] == 1000.0 and "energy_mae_meV_per_atom" not in m
