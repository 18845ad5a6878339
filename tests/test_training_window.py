"""Tests of the GPU-window chain (scripts/device/window.py and gpu.sh), the schedules and the
best-weights rule (acecourse.training), and the benchmark's isolation (scripts/benchmark.py), on
the CPU with the ``ci`` profile."""

from __future__ import annotations

import ast
import atexit
import csv
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import BACKGROUND_ENV  # the environment of the background jobs' processes
from packaging.utils import canonicalize_name

from acecourse.data.rmd17 import load_rmd17_ethanol
from acecourse.training import make_config, train
from acecourse.training.__main__ import main
from acecourse.training.config import TrainConfig
from acecourse.training.data import make_batches, to_atomic_data
from acecourse.training.report import CHAIN, read_chain
from acecourse.training.schedules import CycleSchedule, PlateauSchedule, time_plan
from acecourse.training.steps import StepRunner
from acecourse.training.trainer import (
    BestWeights,
    TrainingError,
    error_metrics,
    load_trained_model,
    predict,
    software_versions,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "device"))
from benchmark import main as benchmark_main  # scripts/benchmark.py (conftest: on the path)
from window import (  # scripts/device/window.py
    LANDED_SETTINGS,
    WINDOW_FILES,
    compare_at_equal_time,
    land_window,
    run_window,
    write_chain,
)
from window import main as window_main

TINY = {  # the ci profile's model, data and test frames; fewer training and validation frames
    "n_train": 10,
    "n_valid": 5,
    "valid_batch_size": 5,
    "warmup_epochs": 1,
    "progress": False,
}
CI_TINY = make_config("ci", TINY)  # the chain the tests' windows land in


def _errors_of(model_file: Path, run_dir: Path, split: str) -> dict:
    """Errors of a saved model on a run's validation or test frames (float64, CPU)."""
    run = json.loads((run_dir / "run.json").read_text())
    source, indices = ("train", run["indices"]["valid"]) if split == "valid" else ("test", None)
    if indices is None:
        indices = run["indices"]["test"]
    frames = load_rmd17_ethanol(source, indices=indices)
    batches = make_batches(to_atomic_data(frames, 5.0), torch.device("cpu"), torch.float64)
    return error_metrics(predict(load_trained_model(model_file), batches, 5))


def _device_repo(tmp_path: Path) -> Path:
    """A stand-in for the device's copy of the tree: the package, the scripts, .carry."""
    repo = tmp_path / "repo"
    (repo / ".carry" / "whl").mkdir(parents=True)
    (repo / "acecourse").symlink_to(ROOT / "acecourse")
    (repo / "scripts").symlink_to(ROOT / "scripts")
    (repo / ".carry" / "commit").write_text("0123abc\n")
    return repo


def _device_env(tmp_path: Path, out: Path, base: dict[str, str] | None = None) -> dict:
    """gpu.sh's environment on this machine: the wheels count as installed (this machine has the
    packages), ``python3`` is this interpreter, the ``ci`` profile."""
    shim, site = tmp_path / "shim", tmp_path / "site"
    shim.mkdir(exist_ok=True)
    site.mkdir(exist_ok=True)
    (site / ".base").touch()
    (shim / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (shim / "python3").chmod(0o755)
    base = os.environ if base is None else base  # a background job: BACKGROUND_ENV
    env = dict(base, PATH=f"{shim}:{base['PATH']}", SITE=str(site), OUT=str(out))
    env.pop("ACECOURSE_GIT_COMMIT", None)
    env.update(PROFILE="ci", RESERVE="5")
    return env


def _files(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def _check(tmp_path: Path, out: Path) -> subprocess.CompletedProcess:
    """gpu.sh's own check of what a device call returns from ``out``."""
    return subprocess.run(["bash", "scripts/device/gpu.sh", "check"], cwd=_device_repo(tmp_path),
                          env=_device_env(tmp_path, out), capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


SETTINGS = [f"{k}={json.dumps(v)}" for k, v in TINY.items()]


def _first_window() -> dict:
    """The device's one command, on the CPU: window 1 of a new chain (from scratch, time-planned)
    in a stand-in for the device's tree, landed there.  Shared by the tests of the chain.

    While it runs, ``$OUT`` is read as the device would return it if it cut the command off
    there: when the log first shows epoch 1, and when it first shows epoch 2.
    """
    tmp_path = Path(tempfile.mkdtemp(prefix="chain_"))
    atexit.register(shutil.rmtree, tmp_path, ignore_errors=True)
    repo = _device_repo(tmp_path)
    out = tmp_path / "out"
    log, midway = out / "window.log", {}
    with subprocess.Popen(
        ["bash", "scripts/device/gpu.sh", "window", "30", *SETTINGS],
        cwd=repo, env=_device_env(tmp_path, out, BACKGROUND_ENV), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    ) as proc, ThreadPoolExecutor(1) as pool:  # fmt: skip
        reader = pool.submit(proc.communicate, timeout=600)
        while not reader.done():
            text = log.read_text() if log.is_file() else ""
            for epoch in (1, 2):
                if f"epoch {epoch}/" in text and epoch not in midway:
                    midway[epoch] = {"files": _files(out), "log": text}
            time.sleep(0.1)
        stdout, stderr = reader.result()
    assert proc.returncode == 0, stdout[-2000:] + stderr[-2000:]
    landed = land_window(out, repo, profile=CI_TINY)
    return {"repo": repo, "out": out, "returned": _files(out), "landed": landed,
            "stdout": stdout, "midway": midway}  # fmt: skip


@pytest.fixture
def first_window(background) -> dict:
    """:func:`_first_window`'s result (a test using it is marked ``READS_WINDOW_1``)."""
    return background


pytestmark = pytest.mark.usefixtures("float64_default")
READS_WINDOW_1 = pytest.mark.background(job=_first_window)


@READS_WINDOW_1
def test_window_command_chains_a_second_window_onto_the_first(first_window, tmp_path):
    """Window 1 came from the device's one command and was landed; window 2 must start from
    window 1's committed best weights."""
    repo, out = first_window["repo"], first_window["out"]
    # what the device returns: 8 files, flat (a file more than 2 folders down never comes back)
    assert first_window["returned"] == sorted(
        ["chain.csv"] + [f"window01/{n}" for n in (*WINDOW_FILES, "window.log")]
    )
    assert "8 files" in first_window["stdout"] and "all come back" in first_window["stdout"]
    first = (CHAIN / "window01").as_posix()
    run1 = json.loads((out / "window01" / "run.json").read_text())
    assert run1["git_commit"] == "0123abc"  # .carry/commit: the device's tree has no .git
    log = (out / "window01" / "window.log").read_text()
    assert run1["plan"]["epochs"] >= 2 and "time plan" in log and "installed after" in log
    done, planned = run1["epochs_completed"], run1["plan"]["epochs"]
    assert f"\nepoch {done}/{planned} stage " in log  # one line per epoch, as it went
    # the row says what ran: the planned cycle, or where the time limit ended it (a loaded CPU)
    row = read_chain(out)[-1]
    if run1["status"] == "finished":
        assert done == planned and row["schedule"].endswith(f"at epoch {planned}, stage two "
                                                            f"from epoch {planned - round(0.2 * planned) + 1}")  # fmt: skip
    else:
        assert done < planned and row["schedule"].endswith(
            f"ended after epoch {done} by the time limit"
        )
    assert run1["checkpoints"] is False and run1["finalize_s"] > 0
    config1 = json.loads((out / "window01" / "config.json").read_text())
    assert config1["seed"] == make_config("ci").seed + 1  # each window its own batch order

    assert first_window["landed"]["removed"] == [] and (repo / first / "model.pt.gz").is_file()
    row1 = read_chain(repo / CHAIN)[0]
    assert row1["window"] == 1 and row1["start_weights"] == "random initialisation"
    assert row1["improved"] == 1  # a window from scratch has no start weights to keep
    metrics1 = np.atleast_1d(np.genfromtxt(repo / first / "metrics.csv", delimiter=",", names=True))
    best1 = metrics1[metrics1["epoch"] == row1["evaluated_epoch"]][0]
    assert row1["valid_forces_mae_meV_per_A"] == pytest.approx(
        best1["valid_forces_mae_meV_per_A"], rel=1e-12
    )

    second = run_window(tmp_path / "out2", epochs=3, profile="ci", overrides=TINY, repo_root=repo)
    run2 = json.loads(Path(second["window_dir"], "run.json").read_text())
    assert run2["init_weights"] == str(repo / first / "model.pt.gz")
    assert second["start_weights"] == row1["model"] and second["window"] == 2
    # where window 2 starts is where window 1 ended: the validation errors of its start weights
    # are window 1's best (both float64); a fresh start would be hundreds of meV/Å off
    start = run2["init_valid"]
    assert start["forces_mae_meV_per_A"] == pytest.approx(
        row1["valid_forces_mae_meV_per_A"], rel=1e-10
    )
    assert start["energy_mae_meV"] == pytest.approx(row1["valid_energy_mae_meV"], rel=1e-10)
    assert second["cumulative_epochs"] == row1["epochs"] + 3

    # landing window 2 drops window 1's model from the tree (git keeps it) and grows the record;
    # fetched files are read-only, the landed copies are not
    (Path(second["window_dir"]) / "window.log").write_text("log\n")
    for path in (tmp_path / "out2").rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    with pytest.raises(TrainingError, match=r"does not belong in a chain of the full profile "
                       r"\(.*hidden_irreps='8x0e\+8x1o'.*dtype='float64', n_train=10, n_valid=5, "
                       r"n_test=40, test_frames=40 \(not 1000\)\): not landed"):  # fmt: skip
        land_window(tmp_path / "out2", repo)  # a ci window never lands in the course's chain
    landed = land_window(tmp_path / "out2", repo, profile=CI_TINY)
    assert landed["removed"] == [row1["model"]] and not (repo / first / "model.pt.gz").exists()
    assert os.access(repo / CHAIN / "window02" / "model.pt.gz", os.W_OK)
    assert [r["window"] for r in read_chain(repo / CHAIN)] == [1, 2]
    with pytest.raises(TrainingError, match="does not extend"):  # the same window twice
        land_window(tmp_path / "out2", repo, profile=CI_TINY)


def _state_dict(model_file: Path) -> dict:
    from acecourse.training.trainer import read_saved_model

    return read_saved_model(model_file)["state_dict"]


@READS_WINDOW_1
def test_a_window_that_cannot_improve_leaves_the_chain_where_it_was(first_window, tmp_path):
    """A window whose every epoch validates worse than its start (a learning rate of 1.0 wrecks
    the weights) must export its start weights again, say so in its row, and report their errors:
    the chain's state never moves to worse weights."""
    repo = first_window["repo"]
    parent = read_chain(repo / CHAIN)[-1]
    wrecked = run_window(tmp_path / "out", epochs=2, profile="ci", repo_root=repo,
                         overrides=dict(TINY, lr=1.0))  # fmt: skip
    window_dir = Path(wrecked["window_dir"])
    run = json.loads((window_dir / "run.json").read_text())
    metrics = np.atleast_1d(np.genfromtxt(window_dir / "metrics.csv", delimiter=",", names=True))
    # the scenario is real: every epoch of the window is worse than its start weights
    start_f = run["init_valid"]["forces_mae_meV_per_A"]
    assert np.all(metrics["valid_forces_mae_meV_per_A"] > 2 * start_f)
    # ... so the start weights stay the state, and the row says so
    assert wrecked["improved"] == 0 and wrecked["evaluated_epoch"] == 0
    assert run["evaluated_weights"]["kept_start"] is True
    ours, theirs = _state_dict(window_dir / "model.pt.gz"), _state_dict(repo / parent["model"])
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # the errors reported are those of the weights that stay: the parent's, on the same frames
    for key in ("valid_forces_mae_meV_per_A", "valid_energy_mae_meV", "test_forces_mae_meV_per_A",
                "test_energy_mae_meV"):  # fmt: skip
        assert wrecked[key] == pytest.approx(parent[key], rel=1e-10), key
    (row,) = read_chain(tmp_path / "out")[-1:]
    assert row["improved"] == 0 and row["window"] == parent["window"] + 1


def test_the_best_validation_weights_are_the_ones_tested(tmp_path, monkeypatch):
    """Validation losses 5, 3, 4, 6 (scripted; the errors are real): epoch 2's EMA weights must be
    exported and tested, not the last epoch's."""
    from acecourse.training import trainer

    real_validate, losses = trainer.validate, iter([5.0, 3.0, 4.0, 6.0])

    def scripted(run, energy_weight, forces_weight):
        metrics, _ = real_validate(run, energy_weight, forces_weight)
        return metrics, next(losses)

    monkeypatch.setattr(trainer, "validate", scripted)
    config = make_config("ci", dict(TINY, max_epochs=4, stage_two_start=None))
    result = train(config, tmp_path)
    assert result["best_epoch"] == 2
    assert json.loads((tmp_path / "run.json").read_text())["evaluated_weights"]["epoch"] == 2
    rows = np.genfromtxt(tmp_path / "metrics.csv", delimiter=",", names=True)
    valid = _errors_of(tmp_path / "model.pt.gz", tmp_path, "valid")
    assert valid["forces_mae_meV_per_A"] == pytest.approx(
        rows["valid_forces_mae_meV_per_A"][1], rel=1e-10
    )
    assert abs(valid["forces_mae_meV_per_A"] - rows["valid_forces_mae_meV_per_A"][3]) > 1e-6
    test = _errors_of(tmp_path / "model.pt.gz", tmp_path, "test")
    for key, value in json.loads((tmp_path / "test_metrics.json").read_text()).items():
        if key in test:
            assert test[key] == pytest.approx(value, rel=1e-10), key


def test_best_weights_restart_with_stage_two_as_mace_torch():
    class FakeEMA:
        def __init__(self):
            self.shadow = [torch.zeros(2)]

    ema, best = FakeEMA(), BestWeights()
    for epoch, (stage, loss) in enumerate([(1, 3.0), (1, 1.0), (2, 50.0), (2, 60.0)], start=1):
        ema.shadow[0].fill_(epoch)
        best.offer(epoch, stage, loss, ema)
    # stage two's losses are not comparable with stage one's: its best is taken among its own
    assert best.epoch == 3 and best.stage == 2 and float(best.weights[0][0]) == 3.0


def test_start_weights_compete_in_every_stage_with_that_stages_loss_weights():
    class FakeEMA:
        def __init__(self):
            self.shadow = [torch.zeros(2)]

    ema, best = FakeEMA(), BestWeights()
    ema.shadow[0].fill_(-1.0)
    best.set_start(ema, energy_term=1.0, forces_term=0.01)  # stage one: 1 + 1000 x 0.01 = 11
    stage_one, stage_two = (1.0, 1000.0), (1000.0, 100.0)  # stage two: 1000 + 100 x 0.01 = 1001
    seen = []
    for epoch, (stage, loss, weights) in enumerate(
        [(1, 20.0, stage_one), (1, 12.0, stage_one), (1, 5.0, stage_one),  # epoch 3 beats 11
         (2, 1500.0, stage_two), (2, 1001.0, stage_two),  # a tie does not move the state
         (2, 900.0, stage_two)], start=1):  # fmt: skip
        ema.shadow[0].fill_(epoch)
        best.offer(epoch, stage, loss, ema, weights)
        seen.append((best.epoch, float(best.weights[0][0]), best.kept_start))
    assert seen == [(0, -1.0, True), (0, -1.0, True), (3, 3.0, False),
                    (0, -1.0, True), (0, -1.0, True), (6, 6.0, False)]  # fmt: skip
    assert best.valid_loss == 900.0 and best.describe()["kept_start"] is False
    lone = BestWeights()
    lone.set_start(ema, 1.0, 1.0)
    with pytest.raises(ValueError, match="must offer its loss weights"):  # it cannot price them
        lone.offer(1, 1, 0.5, ema)


def test_cycle_schedule_warm_up_cosine_and_stage_two():
    config = make_config("ci", {"schedule": "cycle", "warmup_epochs": 4, "lr": 0.01,
                                "cycle_min_lr": 1e-5, "max_epochs": 20})  # fmt: skip
    schedule = CycleSchedule(config)
    lrs = [schedule.lr(e) for e in range(20)]
    np.testing.assert_allclose(lrs[:4], [0.002, 0.004, 0.006, 0.008], rtol=1e-14)
    assert lrs[4] == pytest.approx(0.01, rel=1e-14) and lrs[-1] == pytest.approx(1e-5, rel=1e-12)
    assert all(
        a > b for a, b in itertools.pairwise(lrs[4:])
    )  # decays every epoch after the warm-up
    assert [schedule.stage(e) for e in range(20)] == [1] * 16 + [2] * 4  # the last fifth
    # midway through the decay, the cosine is halfway between peak and floor
    assert schedule.lr(4 + 15 / 2) == pytest.approx((0.01 + 1e-5) / 2, rel=1e-12)
    schedule.plan(10)
    assert schedule.stage_two_start == 8 and schedule.lr(9) == pytest.approx(1e-5, rel=1e-12)
    with pytest.raises(ValueError, match="nothing after"):
        schedule.plan(4)


def test_plateau_schedule_is_torchs_reduce_on_plateau():
    config = make_config("ci", {"scheduler_patience": 2, "lr_factor": 0.5, "stage_two_start": 9})
    ours = PlateauSchedule(config)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
    losses = [5, 4, 4, 4, 4, 3, 3, 3, 3, 2, 1]
    for epoch, loss in enumerate(losses):
        if epoch < 9:
            assert ours.lr(epoch) == optimizer.param_groups[0]["lr"]
            theirs.step(loss)
        else:
            assert ours.lr(epoch) == config.stage_two_lr and ours.stage(epoch) == 2
        ours.after_validation(epoch, loss)
    assert ours.current == optimizer.param_groups[0]["lr"] < config.lr  # it did reduce


def test_compare_at_equal_wall_time(tmp_path):
    def fake_run(name, batch_size, walls, errors):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"batch_size": batch_size}))
        with open(folder / "metrics.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["epoch", "wall_time_s", "valid_forces_mae_meV_per_A"])
            writer.writerows([i + 1, w, e] for i, (w, e) in enumerate(zip(walls, errors)))
        return folder

    # batch 20: more epochs in the time, but the batch-5 run is lower at the common budget (60 s)
    b5 = fake_run("batch5", 5, [20, 40, 60, 80], [30, 20, 12, 9])
    b20 = fake_run("batch20", 20, [10, 20, 30, 40, 50, 60], [40, 30, 25, 26, 18, 15])
    result = compare_at_equal_time([b5, b20])
    assert result["budget_s"] == 60
    assert result["runs"]["batch5"]["valid_forces_mae_meV_per_A_at_budget"] == 12
    assert result["runs"]["batch20"]["valid_forces_mae_meV_per_A_at_budget"] == 15
    assert result["winner"] == "batch5" and result["runs"]["batch20"]["epochs_in_budget"] == 6


def test_land_refuses_what_does_not_extend_the_chain(tmp_path):
    row = {
        k: 0 for k in ("epochs", "cumulative_epochs", "batch_size", "evaluated_epoch", "improved")
    }
    row.update(window=0, start_weights="random initialisation", schedule="plateau", model="a/m.pt.gz",
               valid_forces_mae_meV_per_A=1.0, valid_energy_mae_meV=1.0, test_forces_mae_meV_per_A=1.0,
               test_energy_mae_meV=1.0, test_frames=1000, train_wall_s=1.0, window_wall_s=1.0,
               cumulative_gpu_min=0.1, device="GPU", git_commit="abc")  # fmt: skip
    write_chain([row], tmp_path / "repo" / CHAIN)
    other = dict(row, window=1, start_weights="b/other.pt.gz", model="c/m.pt.gz")
    write_chain([row, other], tmp_path / "back" / CHAIN)
    with pytest.raises(TrainingError, match="started from b/other.pt.gz, not a/m.pt.gz"):
        land_window(tmp_path / "back", tmp_path / "repo")
    write_chain([dict(row, test_frames=999), other], tmp_path / "back" / CHAIN)
    with pytest.raises(TrainingError, match="does not extend"):
        land_window(tmp_path / "back", tmp_path / "repo")


# How closely a window that kept its start weights repeats its parent's errors.  The two rows
# come from different processes, on different GPUs (row 0: an H100), and mace-torch sums messages
# with scatter_add_, whose atomic adds on CUDA have no fixed order; the weights are the same bits.
# - Validation force MAE: evaluated in float32 (the training dtype).  |MAE_a - MAE_b| is at most
#   mean|F_a - F_b| <= mean|F_a - F64| + mean|F_b - F64|.  Measured for row 0's model on its 50
#   validation frames (CPU): mean|F32 - F64| = 0.00097 meV/A, max 0.0057 meV/A; float32 force
#   MAEs of other batchings and thread counts differ by <= 3.6e-6 meV/A, and the H100's recorded
#   value from a CPU float32 evaluation by 4.6e-6 meV/A (3e-7 relative, beyond rel_tol=1e-9).
#   No TF32 is enabled anywhere, so the GPU rounds as float32 does.  0.01 meV/A is five times
#   the bound and 0.5 % of the paper's 2.1 meV/A; the round-off does not scale with the MAE,
#   hence an absolute tolerance.
# - Validation energy MAE: not compared.  float32 rounds a 4209-eV total to 2^-11 eV = 0.49 meV,
#   so another summation order can move a frame's energy by 0.5 meV, a large part of the MAE.
# - Test errors: evaluated in float64.  Another summation order moves a 4209-eV energy by a few
#   units of 2^-40 eV = 9e-10 meV, which could break rel_tol=1e-9 at the paper's 0.4 meV;
#   1e-6 meV (meV/A) allows a thousand such units per frame.
FLOAT32_VALID_F_ABS = 0.01  # meV/A
FLOAT64_TEST_ABS = 1e-6  # meV and meV/A


def test_committed_chain_is_the_full_recipes_from_scratch():
    """The chain trains the ``full`` profile; its first window starts from a random
    initialisation (empty until that window lands), never from another model's weights."""
    assert (ROOT / CHAIN / "chain.csv").is_file()
    rows = read_chain(ROOT / CHAIN)
    assert [r["window"] for r in rows] == list(range(1, len(rows) + 1))
    if not rows:
        return
    assert rows[0]["start_weights"] == "random initialisation"
    # only the newest model of the chain is needed in the tree: it is there
    assert (ROOT / rows[-1]["model"]).is_file()
    full = make_config("full")
    for row in rows:  # every window is of the full profile's model, dtype and frames
        config = json.loads(((ROOT / row["model"]).parent / "config.json").read_text())
        assert {k: config[k] for k in LANDED_SETTINGS} == {
            k: getattr(full, k) for k in LANDED_SETTINGS
        }
    for earlier, later in itertools.pairwise(rows):
        assert later["start_weights"] == earlier["model"]
        if not later["improved"]:  # the window kept its start weights: their errors again
            assert later["evaluated_epoch"] == 0
            assert math.isclose(later["valid_forces_mae_meV_per_A"],
                                earlier["valid_forces_mae_meV_per_A"], rel_tol=0,
                                abs_tol=FLOAT32_VALID_F_ABS)  # fmt: skip
            for key in ("test_forces_mae_meV_per_A", "test_energy_mae_meV"):
                assert math.isclose(later[key], earlier[key], rel_tol=0,
                                    abs_tol=FLOAT64_TEST_ABS), key  # fmt: skip
        assert later["cumulative_epochs"] == earlier["cumulative_epochs"] + later["epochs"]
        assert math.isclose(later["cumulative_gpu_min"],
                            earlier["cumulative_gpu_min"] + later["window_wall_s"] / 60, abs_tol=0.02)  # fmt: skip


def test_previous_recipes_chain_is_a_baseline_of_another_model():
    """The chain of the previous recipe (L = 2, stage-two force weight 100) is kept as a
    baseline beside the chain; its model cannot start a window of the full profile."""
    (baseline,) = read_chain(ROOT / CHAIN / "previous_recipe_L2")
    assert baseline["window"] == 0 and (ROOT / baseline["model"]).is_file()
    config = json.loads((ROOT / baseline["model"]).with_name("config.json").read_text())
    assert config["hidden_irreps"] == "256x0e+256x1o+256x2e"
    assert config["stage_two_forces_weight"] == 100.0
    full = make_config("full")
    previous = (config["hidden_irreps"], config["stage_two_forces_weight"])
    assert (full.hidden_irreps, full.stage_two_forces_weight) != previous
    assert baseline["model"] not in {r["start_weights"] for r in read_chain(ROOT / CHAIN)}


ISOLATED_BENCHMARKS = """
import json, sys
from pathlib import Path
from acecourse.training import make_config
sys.path.insert(0, "scripts")  # the working directory is the repository root
from benchmark import benchmark

config, tmp = make_config("ci", json.loads(sys.argv[1])), Path(sys.argv[2])
result = benchmark(config, ["cueq", "e3nn"], steps=2, out_file=tmp / "b.json", isolate=True)
written = json.loads((tmp / "b.json").read_text())
# a backend that hangs is killed and recorded
killed = benchmark(config, ["e3nn"], steps=2, out_file=tmp / "k.json", isolate=True,
                   timeout_s=0.5)
print(json.dumps({"result": result, "written": written, "killed": killed}))
"""


def _isolated_benchmarks() -> dict:
    """In a process of its own, so that it runs as a background job."""
    with tempfile.TemporaryDirectory(prefix="benchmark_") as tmp:
        done = subprocess.run(
            [sys.executable, "-c", ISOLATED_BENCHMARKS, json.dumps(dict(TINY, n_train=20)), tmp],
            capture_output=True, text=True, check=True, timeout=600, env=BACKGROUND_ENV,
            cwd=ROOT,
        )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.background(job=_isolated_benchmarks)
def test_benchmark_isolates_a_failing_backend(background):
    """cueq cannot run on the CPU: its process records the error; e3nn's timing survives."""
    result = background["result"]
    assert result["backends"]["cueq"]["error"] == "TrainingError: backend cueq needs device cuda"
    timing = result["backends"]["e3nn"]
    assert timing["min_ms_per_step"] > 0 and len(timing["losses"]) == 12
    assert background["written"]["backends"] == result["backends"]
    killed = background["killed"]
    assert killed["backends"]["e3nn"]["error"] == "no result within 0.5 s (killed)"


def test_stock_epoch_times_are_read_from_mace_torchs_log():
    from acecourse.training.stock import epoch_times_from_log

    log = ROOT / "artifacts/mace_ethanol/h200_2026-11-30/stock_mace_run_train_e3nn.log"
    # "Started training" 00:48:19.888, epochs at 00:48:41.197, 00:48:59.619, 00:49:14.976
    np.testing.assert_allclose(epoch_times_from_log(log.read_text()), [21.309, 18.422, 15.357],
                               atol=1e-6)  # fmt: skip


def test_stock_command_is_mace_run_trains_recipe():
    from mace.tools.arg_parser import build_default_arg_parser

    from acecourse.training.stock import stock_command

    config = make_config("full")
    args = stock_command(config, "train.xyz", "valid.xyz", {1: -1.5, 6: -2.5, 8: -3.5})
    parsed = build_default_arg_parser().parse_args(args[1:])
    expected = {
        "hidden_irreps": config.hidden_irreps, "max_ell": 3, "correlation": 3, "batch_size": 5,
        "lr": 0.01, "max_num_epochs": 1000, "ema_decay": 0.99, "energy_weight": 1.0,
        "forces_weight": 1000.0, "amsgrad": True,
        # stage two, under mace-torch's older names (--stage_two sets swa, etc.): from epoch
        # index 800 on, as the course's stage_two_start (mace's `epoch < swa.start` is stage one)
        "swa": True, "start_swa": 800, "swa_energy_weight": 1000.0, "swa_forces_weight": 1000.0,
        "swa_lr": 1e-3,
    }  # fmt: skip
    assert {k: getattr(parsed, k) for k in expected} == expected
    assert parsed.default_dtype == "float32" and parsed.E0s == "{1: -1.5, 6: -2.5, 8: -3.5}"
    assert parsed.radial_MLP == "[64,64,64]" and parsed.scaling == "rms_forces_scaling"


def test_h200_speeds_are_the_committed_measurements():
    from acecourse.training.report import h200_speeds

    h200 = ROOT / "artifacts/mace_ethanol/h200_2026-11-30"
    speeds = h200_speeds(h200)
    bench5 = json.loads((h200 / "benchmark_e3nn_eager_vs_graph_batch5.json").read_text())
    graph, eager = bench5["backends"]["e3nn+graph"], bench5["backends"]["e3nn"]
    assert speeds["graph5"]["epoch_s"] == graph["epoch_s_from_median"]
    assert speeds["eager"]["ms_per_step"] == eager["median_ms_per_step"]
    assert speeds["graph5"]["cuda_graph_used"] and not speeds["eager"]["cuda_graph_used"]
    pair = [json.loads((h200 / f"benchmark_two_processes_at_once_{i}.json").read_text())
            ["backends"]["e3nn+graph"]["epoch_s_from_median"] for i in (1, 2)]  # fmt: skip
    assert speeds["pair"]["epoch_s"] == pytest.approx(sum(pair) / 2, rel=1e-15)
    # the stock loop: the median of its log's epochs 2 and 3 (18.422 s, 15.357 s; test above),
    # spread over the course's 190 steps of batch 5 for its ms per step
    assert graph["steps_per_epoch"] == 190
    assert speeds["stock"]["epoch_s"] == pytest.approx((18.422 + 15.357) / 2, abs=1e-6)
    assert speeds["stock"]["ms_per_step"] == pytest.approx(speeds["stock"]["epoch_s"] / 0.19)


def test_chain_figure_draws_every_window_and_the_reference_lines():
    import matplotlib.pyplot as plt

    from acecourse.training.report import chain_figure

    rows = [{"window": w, "cumulative_gpu_min": t, "test_forces_mae_meV_per_A": f,
             "test_energy_mae_meV": e, "improved": i}
            for w, t, f, e, i in [(0, 4.4, 15.0, 3.0, 1), (1, 14.0, 8.0, 1.0, 1),
                                  (2, 24.0, 8.0, 1.0, 0)]]  # fmt: skip
    paper = {"forces_mae_meV_per_A": 2.1, "energy_mae_meV": 0.4}
    others = {"forces_mae_meV_per_A": {"a": 3.3, "b": 2.7}, "energy_mae_meV": {"b": 0.45}}
    fig = chain_figure(rows, paper, others)
    for ax, key, refs in zip(fig.axes, ["forces_mae_meV_per_A", "energy_mae_meV"], [3, 2]):
        chain, kept, *hlines = ax.get_lines()
        np.testing.assert_array_equal(chain.get_xdata(), [4.4, 14.0, 24.0])
        np.testing.assert_array_equal(chain.get_ydata(), [r[f"test_{key}"] for r in rows])
        np.testing.assert_array_equal(kept.get_xdata(), [24.0])  # window 2 kept its start
        assert len(hlines) == refs and hlines[0].get_ydata()[0] == paper[key]
        assert [h.get_ydata()[0] for h in hlines[1:]] == list(others[key].values())
        assert [t.get_text() for t in ax.texts] == ["w0", "w1", "w2"]
    plt.close(fig)


def test_window_cli_needs_a_time_or_epochs(tmp_path, capsys):
    assert window_main(["window", "--out", str(tmp_path / "o"), "--profile", "ci"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: give the window's end (--until) or its epochs"
    assert benchmark_main(["--out", str(tmp_path / "b.json"), "--stock-epochs", "1"]) == 2
    assert "--stock-epochs 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "b.json").exists()


def test_every_command_line_rejects_a_setting_without_a_value(tmp_path, capsys):
    """The three ``--set KEY=VALUE`` parsers are one (``config.parse_settings``)."""
    runs = [
        (main, ["train", "--out", str(tmp_path / "t"), "--set", "lr"]),
        (benchmark_main, ["--out", str(tmp_path / "b.json"), "--set", "lr"]),
        (window_main, ["window", "--out", str(tmp_path / "o"), "--epochs", "1", "--set", "lr"]),
    ]
    for command, argv in runs:
        assert command(argv) == 2
        assert capsys.readouterr().err.strip() == "error: --set expects key=value, got 'lr'"
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_window_settings_are_checked():
    with pytest.raises(ValueError, match="setting schedule=\"sgdr\": input should be 'plateau' or"):
        make_config("ci", {"schedule": "sgdr"})
    with pytest.raises(ValueError, match="stage_two_fraction=1.0: input should be less than 1"):
        make_config("ci", {"stage_two_fraction": 1.0})
    assert TrainConfig().schedule == "plateau"  # the paper's recipe stays the default


def _failing_window() -> dict:
    with tempfile.TemporaryDirectory(prefix="failing_window_") as tmp:
        repo, out = _device_repo(Path(tmp)), Path(tmp) / "out"
        done = subprocess.run(
            ["bash", "scripts/device/gpu.sh", "window", "40", *SETTINGS, "lr=-1"],
            cwd=repo, env=_device_env(Path(tmp), out, BACKGROUND_ENV), capture_output=True,
            text=True,
            timeout=300, check=False,
        )  # fmt: skip
        files = _files(out)
        log = (out / "window_failed.log").read_text() if files == ["window_failed.log"] else ""
        return {"done": done, "files": files, "log": log}


@pytest.mark.background(job=_failing_window)
def test_a_failing_window_returns_its_log_and_a_nonzero_exit(background):
    """A window that fails before its folder exists (a bad setting) must still return its log,
    as window_failed.log, and exit non-zero (gpu.sh once exited before writing it)."""
    done = background["done"]
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert background["files"] == ["window_failed.log"]
    log = background["log"]
    assert "installed after" in log and "error: setting lr=-1: input should be greater than 0" in log
    assert "window failed after" in done.stdout and "window_failed.log" in done.stdout  # ls of $OUT


@READS_WINDOW_1
def test_a_window_cut_off_mid_run_leaves_its_log_in_out(first_window):
    """The device returns what is under $OUT even when it kills a command at its limit: the
    window's log must be there, written as it goes, with the epochs it got through.  What a
    kill would leave is what $OUT holds at that moment: read while window 1 ran."""
    midway = first_window["midway"]
    run1 = json.loads((first_window["out"] / "window01" / "run.json").read_text())
    # epochs 1 and 2 (the window plans at least 2), each seen while the window ran
    assert set(midway) == {e for e in (1, 2) if e <= run1["epochs_completed"]} and 1 in midway
    for epoch, seen in midway.items():
        assert "installed after" in seen["log"], epoch
        assert all(f"epoch {e}/" in seen["log"] for e in range(1, epoch + 1)), epoch
        assert seen["files"] == ["window.log"], epoch


def test_gpu_sh_check_follows_the_device_rules(tmp_path):
    """At most 8 files, 2 folders down, plain names, plain files, 16 MiB each: anything else
    is named in one line and fails (the device leaves it out without failing the call; a window
    once wrote its files 4 folders down and none came back)."""
    out = tmp_path / "out"
    (out / "a" / "b").mkdir(parents=True)
    (out / "a" / "b" / "ok.txt").write_text("2 folders down: returned\n")
    (out / "top.csv").write_text("x\n")
    ok = _check(tmp_path / "ok", out)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[-3:] == ["    0.00 MiB  a/b/ok.txt", "    0.00 MiB  top.csv",
                                           "2 files, 0.00 MiB: all come back"]  # fmt: skip
    (out / "a" / "b" / "c").mkdir()
    (out / "a" / "b" / "c" / "deep.txt").write_text("3 folders down: left out\n")
    (out / "bad name.txt").write_text("x")
    (out / "link").symlink_to(out / "top.csv")
    with open(out / "big.bin", "wb") as f:
        f.truncate(16 * 2**20 + 1)
    bad = _check(tmp_path / "bad", out)
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1] == (
        f"error: {out}: would not all come back: a/b/c/deep.txt: more than 2 folders down; "
        "bad name.txt: a name other than A-Z a-z 0-9 . _ -; big.bin: over 16 MiB; "
        "link: not a plain file"
    )
    for i in range(9):
        (tmp_path / "many" / f"f{i}").parent.mkdir(exist_ok=True)
        (tmp_path / "many" / f"f{i}").write_text("x")
    many = _check(tmp_path / "m", tmp_path / "many")
    assert many.stderr.strip().endswith("would not all come back: 9 files (at most 8)")


@READS_WINDOW_1
def test_land_reads_the_repository_layout_too(first_window, tmp_path):
    """Files arranged as in the repository (chain/chain.csv, chain/windowNN/) land as the flat
    returned layout does."""
    repo = tmp_path / "repo"
    (repo / CHAIN).mkdir(parents=True)
    back = tmp_path / "back"
    (back / CHAIN).mkdir(parents=True)
    src = first_window["out"]
    (back / CHAIN / "chain.csv").write_bytes((src / "chain.csv").read_bytes())
    (back / CHAIN / "window01").mkdir()
    for path in (src / "window01").iterdir():
        (back / CHAIN / "window01" / path.name).write_bytes(path.read_bytes())
    landed = land_window(back, repo, profile=CI_TINY)
    assert landed["window"] == 1 and (repo / CHAIN / "window01" / "model.pt.gz").is_file()


def test_time_plan_counts_everything_between_epochs():
    """The plan's time per epoch is wall time between epoch ends (steps, validation and all that
    runs between epochs), not the epochs' own step-and-validation times."""
    planned = []
    run = SimpleNamespace(
        epoch=5,
        config=SimpleNamespace(warmup_epochs=5),
        run_info={},
        history=[{"epoch_time_s": 1.0, "wall_time_s": 10.0 + 2.0 * i} for i in range(5)],
        schedule=SimpleNamespace(plan=planned.append),
    )
    time_plan(time.time() + 100.0, log=lambda _: None)(run)
    assert run.run_info["plan"]["epoch_s"] == 2.0  # (18 - 10) / 4, not 1.0
    assert planned == [5 + int(run.run_info["plan"]["seconds_left"] // 2.0) - 1]


def _window_stepping(monkeypatch, at_step, action):
    """Real training steps; ``action(loss)`` replaces the loss of step ``at_step``."""
    real_step, count = StepRunner.step, itertools.count(1)

    def step(self, batch):
        loss = real_step(self, batch)
        return action(loss) if next(count) == at_step else loss

    monkeypatch.setattr(StepRunner, "step", step)


@READS_WINDOW_1
def test_a_signal_ends_a_window_evaluated_and_its_row_says_where(first_window, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    """SIGTERM in epoch 2 of a 6-epoch window: the window finishes epoch 2 and ends evaluated,
    and its row says it ended there (the schedule it planned had 6 epochs)."""

    def signal_now(loss):
        os.kill(os.getpid(), signal.SIGTERM)
        return loss

    _window_stepping(monkeypatch, 3, signal_now)  # 2 steps per epoch: step 3 is in epoch 2
    row = run_window(tmp_path / "out", epochs=6, profile="ci", overrides=TINY,
                     repo_root=first_window["repo"])  # fmt: skip
    assert row["status"] == "finished_at_signal" and row["epochs"] == 2
    assert row["schedule"].endswith("at epoch 6, stage two from epoch 6; ended after epoch 2 "
                                     "by a signal")  # fmt: skip
    assert sorted(p.name for p in Path(row["window_dir"]).iterdir()) == sorted(WINDOW_FILES)


@READS_WINDOW_1
def test_a_signal_during_the_test_evaluation_does_not_lose_the_window(first_window, tmp_path,
                                                                       monkeypatch, capfd):  # fmt: skip
    """On the device the SIGTERM of the safety net can come after the last epoch, while the
    window tests its weights: the window notes it, finishes and writes its files (without the
    guard Python's default handler would end it with nothing but its log)."""
    import acecourse.training.trainer as trainer_module

    real_end_run = trainer_module.end_run

    def end_run_after_a_signal(run, status):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_end_run(run, status)

    monkeypatch.setattr(trainer_module, "end_run", end_run_after_a_signal)
    before = signal.getsignal(signal.SIGTERM)
    row = run_window(tmp_path / "out", epochs=2, profile="ci", overrides=TINY,
                     repo_root=first_window["repo"])  # fmt: skip
    assert row["status"] == "finished" and row["epochs"] == 2
    assert sorted(p.name for p in Path(row["window_dir"]).iterdir()) == sorted(WINDOW_FILES)
    assert "warning: SIGTERM outside the epochs: ignored" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # the guard is gone after the window


@READS_WINDOW_1
def test_a_diverged_window_keeps_its_best_weights(first_window, tmp_path, monkeypatch):
    """A non-finite training loss in epoch 3 ends the window with the best weights of epochs
    0-2 (no epoch's NaN weights, no lost window); a run that pauses at its limit still fails."""
    _window_stepping(monkeypatch, 5, lambda loss: loss * float("nan"))
    row = run_window(tmp_path / "out", epochs=6, profile="ci", overrides=TINY,
                     repo_root=first_window["repo"])  # fmt: skip
    assert row["status"] == "stopped_at_non_finite_loss" and row["epochs"] == 2
    assert row["evaluated_epoch"] in (0, 1, 2) and math.isfinite(row["test_forces_mae_meV_per_A"])
    assert row["schedule"].endswith("ended after epoch 2 by a non-finite training loss")
    run = json.loads((Path(row["window_dir"]) / "run.json").read_text())
    assert (
        run["stopped"] == "training loss became nan at epoch 3: ended with the best weights so far"
    )
    monkeypatch.undo()
    _window_stepping(monkeypatch, 5, lambda loss: loss * float("nan"))
    with pytest.raises(TrainingError, match="training loss became nan at epoch 3"):
        train(make_config("ci", dict(TINY, max_epochs=4)), tmp_path / "plain")
    assert not (tmp_path / "plain" / "test_metrics.json").exists()


def test_a_nan_validation_loss_never_becomes_the_best():
    ema = SimpleNamespace(shadow=[torch.ones(2)])
    best = BestWeights()
    assert best.offer(1, 1, 3.0, ema) and not best.offer(2, 1, float("nan"), ema)
    assert best.epoch == 1 and best.valid_loss == 3.0


def test_a_window_writes_no_checkpoint(tmp_path):
    result = train(make_config("ci", dict(TINY, max_epochs=3, checkpoint_every=1)),
                   tmp_path, checkpoints=False)  # fmt: skip
    assert result["status"] == "finished"
    names = {p.name for p in tmp_path.iterdir()}
    assert "checkpoint.pt" not in names and {"metrics.csv", "run.json", "model.pt.gz"} <= names
    assert json.loads((tmp_path / "run.json").read_text())["checkpoints"] is False


def _carried() -> list[str]:
    """The ``name==version`` pins of the wheels ``make_carry.sh`` carries (its BASE list)."""
    text = (ROOT / "scripts/device/make_carry.sh").read_text()
    return re.search(r"^BASE=\(([^)]*)\)", text, re.MULTILINE).group(1).split()


def _imported_distributions(*entry_points: Path) -> set[str]:
    """The distributions whose modules the course's code imports from ``entry_points`` on,
    anywhere in a module (function-level imports too), following ``acecourse`` modules."""
    from importlib import metadata

    files, seen, tops = list(entry_points), set(), set()
    while files:
        path = files.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] != "acecourse":
                    tops.add(parts[0])
                    continue
                for i in range(1, len(parts) + 1):  # each package on the way, and the module
                    base = ROOT.joinpath(*parts[:i])
                    files += [f for f in (base / "__init__.py", base.with_suffix(".py"))
                              if f.is_file()]  # fmt: skip
    tops -= set(sys.stdlib_module_names)
    found = metadata.packages_distributions()
    return {canonicalize_name(d) for top in tops for d in found.get(top, [top])}


def test_every_package_a_window_imports_is_on_the_image_or_carried():
    """The GPU machine starts from its image: a package the window or the benchmark imports
    that is neither there nor carried stops the window at its first import (pooch, once).
    Packages the carried ones require must be there too, but for ``python-hostlist``, which
    mace-torch imports only for distributed runs on SLURM."""
    from importlib import metadata

    from packaging.requirements import Requirement

    lines = (ROOT / "scripts/device/image_packages.txt").read_text().splitlines()
    image = {canonicalize_name(line) for line in lines if line.strip() and line[0] != "#"}
    carried = {canonicalize_name(pin.split("==")[0]) for pin in _carried()}
    entry_points = [ROOT / "scripts/device/window.py", ROOT / "scripts/benchmark.py",
                    ROOT / "acecourse/training/__main__.py"]  # fmt: skip
    needed = _imported_distributions(*entry_points)
    assert {"torch", "mace-torch", "pydantic", "pooch"} <= needed  # the check sees them
    assert sorted(needed - image - carried) == []
    missing, todo, done = set(), sorted(needed & carried), set()
    while todo:  # what the carried packages require, through the carried ones
        name = todo.pop()
        done.add(name)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            device_python = {"extra": "", "python_version": "3.12"}  # the image's Python
            if req.marker is not None and not req.marker.evaluate(device_python):
                continue
            dep = canonicalize_name(req.name)
            if dep in carried and dep not in done:
                todo.append(dep)
            elif dep not in image | carried:
                missing.add(dep)
    assert sorted(missing) == ["python-hostlist"]


def test_carried_wheels_are_pinned_to_the_course_pins():
    """Every wheel make_carry.sh carries is pinned (a fresh session must carry what ran on the
    device), at the version requirements.txt pins where it pins one; a run records the version
    of every one it imports."""
    base = _carried()
    pins = dict(b.split("==") for b in base)
    assert all("==" in b for b in base)
    required = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    shared = set(pins) & set(required)
    assert {"mace-torch", "e3nn", "ase"} <= shared
    assert {k: pins[k] for k in shared} == {k: required[k] for k in shared}
    recorded = software_versions()  # what a run records: every package it has imported
    assert {k: recorded[k] for k in ("mace-torch", "e3nn", "ase", "pydantic", "pooch")} == {
        k: required[k] for k in ("mace-torch", "e3nn", "ase", "pydantic", "pooch")
    }
    assert recorded["torch"] == torch.__version__ and "python" in recorded
