"""Tests of the linear ACE model: descriptor Jacobian, symmetry of forces, exact recovery by ridge."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from acecourse.ace.fit import NormalEquations, design_rank, design_singular_values, learning_curve
from acecourse.ace.model import ACEDescriptor
from acecourse.equivariance import check_equivariance


def molecule(seed, n_frames=4):
    g = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [1.5, 0, 0], [2.0, 1.3, 0], [-0.6, 0.9, 0.1], [-0.5, -0.9, 0.3]])
    return torch.tensor(base + 0.05 * g.normal(size=(n_frames, 5, 3))), torch.tensor(
        [1, 1, 2, 0, 0]
    )


def test_jacobian_matches_finite_differences():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (3, 2), 3: (2, 1)})
    pos, species = molecule(0)
    x, jac = d.features_and_jacobian(pos, species, chunk_size=3)
    assert x.shape == (4, d.n_features) and jac.shape == (4, d.n_features, 5, 3)
    assert torch.allclose(x, d.structure_features(pos, species), atol=1e-14, rtol=0)
    eps = 1e-6
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        plus, minus = pos[1].clone(), pos[1].clone()
        plus[atom, axis] += eps
        minus[atom, axis] -= eps
        fd = (d.structure_features(plus, species) - d.structure_features(minus, species)) / (
            2 * eps
        )
        assert torch.allclose(fd, jac[1, :, atom, axis], atol=1e-8, rtol=0)


def test_forces_of_linear_model_are_equivariant():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (3, 2), 3: (2, 1)})
    coef = torch.tensor(np.random.default_rng(1).normal(size=d.n_features))
    pos, species = molecule(1, 1)

    def forces(p, s):
        _, jac = d.features_and_jacobian(p.unsqueeze(0), s)
        return -torch.einsum("bfnx,f->nx", jac, coef)

    errors = check_equivariance(forces, pos[0], species, "1o", per_atom=True)
    assert max(errors.values()) < 1e-10


def test_ridge_recovers_a_linear_model():
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (3, 0), 2: (2, 1)})
    pos, species = molecule(2, 40)
    x, jac = d.features_and_jacobian(pos, species)
    x, jac = x.numpy(), jac.numpy()
    g = np.random.default_rng(2)
    coef = g.normal(size=d.n_features) * (np.abs(x).max(0) > 0)
    energies = x @ coef + 3.0
    forces = -np.einsum("bfnx,f->bnx", jac, coef)
    normal = NormalEquations(d.n_features)
    normal.add(x[:20], energies[:20], jac[:20], forces[:20])
    normal.add(x[20:], energies[20:], jac[20:], forces[20:])
    fit = normal.solve(ridge=1e-12, force_weight=1.0)
    pe, pf = fit.predict(x, jac)
    assert np.abs(pe - energies).max() < 1e-6 and np.abs(pf - forces).max() < 1e-6


def synthetic_normal_equations():
    """Normal equations of 6 columns: 0 random, 1 zero, 2 = copy of 0, 3 = 2 x column 0,
    4 = column 0 in the energy rows but not in the force rows, 5 random."""
    g = np.random.default_rng(5)
    x = g.normal(size=(7, 6))
    j = g.normal(size=(7, 6, 3, 3))
    x[:, 1], j[:, 1] = 0.0, 0.0
    x[:, 2], j[:, 2] = x[:, 0], j[:, 0]
    x[:, 3], j[:, 3] = 2 * x[:, 0], 2 * j[:, 0]
    x[:, 4] = x[:, 0]
    normal = NormalEquations(6)
    normal.add(x[:3], g.normal(size=3), j[:3], g.normal(size=(3, 3, 3)))
    normal.add(x[3:], g.normal(size=4), j[3:], g.normal(size=(4, 3, 3)))
    return normal, x, j


def test_redundant_columns_finds_zero_and_exact_copies_only():
    normal, _, _ = synthetic_normal_equations()
    zero, duplicate = normal.redundant_columns()
    assert zero.tolist() == [False, True, False, False, False, False]
    # the copy is found; a multiple and a column equal only in the energy rows are not copies
    assert duplicate.tolist() == [False, False, True, False, False, False]
    # restricted to columns 2..5, column 2 is the kept one of its pair
    zero, duplicate = normal.redundant_columns(np.array([0, 0, 1, 1, 1, 1], dtype=bool))
    assert not zero.any() and not duplicate.any()
    with pytest.raises(ValueError, match="no frames"):
        NormalEquations(3).redundant_columns()


def test_redundant_columns_of_a_molecule_with_one_oxygen():
    # H H C O-like species (1 atom of element index 2): at nu = 1 the O-centred O-channel pair
    # sums vanish (n_max of them) and the pair sum (Z, z) equals (z, Z) for the 3 element pairs
    n_max = 3
    d = ACEDescriptor((1, 6, 8), 5.0, {1: (n_max, 0)})
    pos, species = molecule(3, 6)
    x, jac = d.features_and_jacobian(pos, species)
    normal = NormalEquations(d.n_features)
    normal.add(x.numpy(), np.zeros(6), jac.numpy(), np.zeros((6, 5, 3)))
    zero, duplicate = normal.redundant_columns()
    assert zero.sum() == n_max and duplicate.sum() == 3 * n_max
    distinct = ~zero & ~duplicate
    assert distinct.sum() == 5 * n_max  # unordered pairs HH, HC, HO, CC, CO
    assert design_rank([(x.numpy(), None, jac.numpy(), None)], distinct) == 5 * n_max + 1


def test_design_rank_counts_rows_and_columns():
    _, x, j = synthetic_normal_equations()
    chunks = [(x, None, j, None)]
    mask = np.array([1, 0, 1, 1, 1, 1], dtype=bool)  # 0 = 2 and 3 = 2 x 0: rank 3 of 5 columns
    assert design_rank(chunks, mask, forces=True, intercept=False) == 3
    assert design_rank(chunks, mask, forces=True) == 4  # the intercept column is independent
    # energies only: 7 rows, and column 4 equals column 0 there
    assert design_rank(chunks, mask, forces=False, intercept=False) == 2
    with pytest.raises(ValueError, match="zero columns"):
        design_rank(chunks, np.ones(6, dtype=bool))


def test_design_singular_values_behind_the_rank():
    _, x, j = synthetic_normal_equations()
    chunks = [(x, None, j, None)]
    mask = np.array([1, 0, 1, 1, 1, 1], dtype=bool)
    values, threshold = design_singular_values(chunks, mask, forces=True, intercept=False)
    assert len(values) == 5 and np.all(np.diff(values) <= 0)
    # 2 = copy of 0 and 3 = 2 x 0: two singular values at the rounding level, far below the threshold
    assert (
        np.sum(values > threshold) == design_rank(chunks, mask, forces=True, intercept=False) == 3
    )
    assert values[2] > 1e-2 * values[0] and values[3] < 0.1 * threshold
    # the threshold is numpy.linalg.matrix_rank's: 70 rows (7 energies + 63 force components)
    assert threshold == 70 * np.finfo(float).eps * values[0]


def test_solve_ridges_matches_solve():
    normal, _, _ = synthetic_normal_equations()
    mask = np.array([1, 0, 0, 0, 1, 1], dtype=bool)
    fits = normal.solve_ridges([1e-6, 1e-2], 0.5, mask)
    for ridge, fit in zip([1e-6, 1e-2], fits):
        single = normal.solve(ridge, 0.5, mask)
        np.testing.assert_allclose(fit.coef, single.coef, rtol=0, atol=1e-12)
        assert fit.coef[~mask].tolist() == [0.0, 0.0, 0.0] and fit.ridge == ridge
    # a singular system: None in a list of ridges, an error for a single solve
    singular = normal.solve_ridges([0.0, 1e-6], 0.5, np.ones(6, dtype=bool))
    assert singular[0] is None and singular[1] is not None
    with pytest.raises(np.linalg.LinAlgError):
        normal.solve(0.0, 0.5, np.ones(6, dtype=bool))


def test_learning_curve_records_grid_counts_and_rank():
    from ase import Atoms

    d = ACEDescriptor((1, 6, 8), 5.0, {1: (2, 0), 2: (2, 1)})
    pos, species = molecule(4, 14)
    numbers = [(1, 6, 8)[int(s)] for s in species]
    g = np.random.default_rng(4)
    frames = []
    for p in pos.numpy():
        atoms = Atoms(numbers=numbers, positions=p)
        atoms.info["REF_energy"] = float(g.normal())
        atoms.arrays["REF_forces"] = g.normal(size=(5, 3))
        frames.append(atoms)
    ridges = [1e-8, 1e-4, 1e-1]
    result = learning_curve(d, frames[:8], frames[8:11], frames[11:], [4, 8], ridges, [0.5, 1.0],
                            chunk_size=3, rank_frames=5)  # fmt: skip
    assert result["ridges"] == ridges and len(result["results"]) == 4
    for record in result["results"]:
        scores = [(p["valid_score"], p["ridge"], p["force_weight"]) for p in record["grid"]]
        assert len(scores) == 6
        best = min(s for s in scores if s[0] is not None)
        assert (record["ridge"], record["force_weight"]) == best[1:]
        assert (
            record["n_features"] == record["n_columns"] - record["n_zero"] - record["n_duplicate"]
        )
    nu1 = next(r for r in result["results"] if r["nu"] == 1)
    assert (nu1["n_columns"], nu1["n_zero"], nu1["n_duplicate"]) == (18, 2, 6)
    assert result["rank"]["1"] == {"n_frames": 5, "distinct_columns": 10, "rank_with_intercept": 11}
    with pytest.raises(ValueError, match="ridge"):
        learning_curve(d, frames[:8], frames[8:11], frames[11:], [4], [], [1.0])


FIT_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ace_fit.py"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sizes", "50", "2000"], "--sizes"),
        (["--ridges", "0"], "--ridges"),
        (["--n-test", "0"], "--n-test"),
        (["--rank-frames", "-1"], "--rank-frames"),
    ],
)
def test_fit_script_rejects_bad_arguments_with_one_line(arguments, message, monkeypatch, capsys,
                                                        tmp_path):  # fmt: skip
    """The script's main() in this process (the script itself runs in the test below)."""
    spec = importlib.util.spec_from_file_location("ace_fit", FIT_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    # --output: should a check ever let the arguments through, no committed file is written
    monkeypatch.setattr(sys, "argv", [str(FIT_SCRIPT), *arguments, "--output",
                                      str(tmp_path / "fit.json")])  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        script.main()
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err.strip().splitlines()[-1].startswith("ace_fit.py: error: " + message)


def test_fit_script_runs_as_a_script_and_rejects_with_one_line(tmp_path):
    run = subprocess.run(
        [sys.executable, str(FIT_SCRIPT), "--ridges", "0", "--output", str(tmp_path / "f.json")],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2 and run.stdout == ""
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ace_fit.py: error: --ridges")
