"""Tests of the paired comparison of design points (acecourse.design_space)."""

from __future__ import annotations

import json
import math

import pytest

from acecourse import ARTIFACTS
from acecourse import design_space as sweep_script

ARTIFACT = ARTIFACTS / "phase04" / "sweep.json"


def test_paired_t_against_a_hand_computation():
    better, worse = [10.0, 20.0, 30.0], [11.0, 23.0, 32.0]  # differences 1, 3, 2
    result = sweep_script.paired_comparison(better, worse)
    assert result["differences"] == [1.0, 3.0, 2.0]
    assert result["mean_difference"] == 2.0 and result["std_difference"] == 1.0
    assert result["t"] == pytest.approx(2.0 * math.sqrt(3))  # mean / (sd / sqrt(n))
    assert result["wins"] == 3 and result["losses"] == 0
    assert result["p_sign"] == pytest.approx(2 / 8)  # two-sided binomial, 3 of 3
    # t = 3.46 with 2 degrees of freedom: p = 0.074, not significant at 5 %
    assert result["p_t"] == pytest.approx(0.0742, abs=1e-3)
    assert result["verdict"] == "no clear difference"


def test_pairing_removes_a_shared_seed_effect():
    """A seed that shifts both points alike hides the difference from an unpaired test only."""
    seed_effect = [0.0, 40.0, -30.0, 80.0, 10.0]
    better = [100.0 + e for e in seed_effect]
    worse = [105.0 + e + 0.5 * (-1) ** i for i, e in enumerate(seed_effect)]
    paired = sweep_script.paired_comparison(better, worse)
    assert paired["verdict"] == "yes" and paired["wins"] == 5 and paired["t"] > 10
    unpaired = sweep_script.paired_comparison(worse, better)  # swapped: the opposite verdict
    assert unpaired["verdict"] == "opposite" and unpaired["losses"] == 5


def test_rejects_unpaired_input():
    with pytest.raises(ValueError, match="same number"):
        sweep_script.paired_comparison([1.0, 2.0], [1.0, 2.0, 3.0])


def test_the_committed_sweep_has_every_point_with_every_seed():
    artifact = json.loads(ARTIFACT.read_text())
    names = {sweep_script.point_name(p) for p in sweep_script.design_points()}
    seen = {(r["name"], r["seed"]) for r in artifact["points"]}
    assert seen == {(n, s) for n in names for s in artifact["seeds"]}


def test_step_cpu_ms_times_every_point_by_name():
    points = [sweep_script.BASE, {**sweep_script.BASE, "num_interactions": 1}]
    budget = {**sweep_script.BUDGET, "n_train": 50}
    times = sweep_script.step_cpu_ms(points, budget, rounds=3, warmup=1)
    assert list(times) == ["nu2_T2_L1", "nu2_T1_L1"]
    assert all(0 < t["min_ms"] <= t["median_ms"] for t in times.values())
