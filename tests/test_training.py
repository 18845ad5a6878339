"""Tests of the MACE training command (acecourse.training), on the CPU in float64."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark import benchmark  # scripts/benchmark.py (conftest: on the path)
from benchmark import main as benchmark_main

from acecourse.data.rmd17 import load_rmd17_ethanol
from acecourse.training import make_config, train
from acecourse.training.__main__ import main
from acecourse.training.config import config_from_dict
from acecourse.training.data import LoaderBatches, StaticBatches, to_atomic_data
from acecourse.training.steps import EMA, Fields, StepRunner
from acecourse.training.trainer import TrainingError

TINY = {
    "n_train": 10,
    "n_valid": 5,
    "n_test": 5,
    "max_epochs": 4,
    "stage_two_start": 3,
    "progress": False,
    "checkpoint_every": 1,
    "valid_batch_size": 5,
}


pytestmark = pytest.mark.usefixtures("float64_default")


def test_static_batches_equal_mace_loader_batches():
    data = to_atomic_data(load_rmd17_ethanol("train", indices=slice(0, 12)), r_max=5.0)
    static = StaticBatches(data, torch.device("cpu"), torch.float64)
    loader = LoaderBatches(data, torch.device("cpu"), torch.float64)
    idx = torch.tensor([7, 2, 11, 0, 5])
    a, b = static.batch(idx), loader.batch(idx)
    assert set(a) == set(b)
    # mace gives a non-periodic molecule a dummy box (cell, rcell, volume) that depends on its extent; with zero shifts
    # it never enters energies or forces, so the template's box is used for every batch
    for key in set(a) - {"cell", "rcell", "volume"}:
        assert torch.equal(a[key], b[key]), key
    from acecourse.training.model import build_model

    model = build_model(make_config("ci"), np.zeros(3), 1.0, 8.0)
    out_a, out_b = model(a, compute_force=True), model(b, compute_force=True)
    torch.testing.assert_close(out_a["energy"], out_b["energy"], rtol=0, atol=1e-10)
    torch.testing.assert_close(out_a["forces"], out_b["forces"], rtol=0, atol=1e-12)
    # every ethanol graph is complete: 9 atoms, 72 directed edges within 5 Å
    assert data[0].edge_index.shape == (2, 72)


def test_step_loss_is_mace_weighted_energy_forces_loss():
    """The step's loss (mace-torch's, fed the batch dict) against the formula of the MACE
    paper's training, λE · mean((ΔE/N)²) + λF · mean(ΔF²), and after set_loss_weights."""
    from mace.tools import torch_geometric

    data = to_atomic_data(load_rmd17_ethanol("train", indices=slice(0, 5)), r_max=5.0)
    batch = torch_geometric.batch.Batch.from_data_list(data)
    rng = torch.Generator().manual_seed(0)
    pred = {
        "energy": batch.energy + torch.randn(batch.energy.shape, generator=rng),
        "forces": batch.forces + 0.1 * torch.randn(batch.forces.shape, generator=rng),
    }
    model = torch.nn.Linear(1, 1).double()
    runner = StepRunner(model, torch.optim.SGD(model.parameters()), EMA(model.parameters(), 0.99),
                        None, use_graph=False)
    n_atoms = (batch.ptr[1:] - batch.ptr[:-1]).double()
    energy_term = torch.mean(((batch.energy - pred["energy"]) / n_atoms) ** 2)
    forces_term = torch.mean((batch.forces - pred["forces"]) ** 2)
    for w_e, w_f in (1.0, 1000.0), (1000.0, 1000.0):
        runner.set_loss_weights(w_e, w_f)
        ours = runner.loss(Fields(batch.to_dict()), pred)
        expected = w_e * energy_term + w_f * forces_term
        assert abs(float(ours) - float(expected)) <= 1e-12 * float(expected)


def test_ema_matches_torch_ema():
    from torch_ema import ExponentialMovingAverage

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(5))]
    ours, theirs = EMA(params, decay=0.99), ExponentialMovingAverage(params, decay=0.99)
    for _ in range(30):
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn_like(p))
        ours.update()
        theirs.update()
    for s, t in zip(ours.shadow, theirs.shadow_params):
        torch.testing.assert_close(s, t, rtol=0, atol=1e-12)


def test_float32_run_is_also_evaluated_in_float64(tmp_path):
    config = make_config("ci", dict(TINY, max_epochs=2, stage_two_start=None, dtype="float32"))
    result = train(config, tmp_path)
    record = json.loads((tmp_path / "test_metrics_float64.json").read_text())
    assert record["metrics"] == result["test_float64"]
    f32, f64 = result["test"], result["test_float64"]
    # the same (EMA) weights: forces agree to float32 precision, energies to float32 rounding of
    # ~4209 eV (an export of the raw instead of the EMA weights once broke this by 12 meV)
    assert (
        abs(f32["forces_mae_meV_per_A"] - f64["forces_mae_meV_per_A"])
        < 1e-3 * f64["forces_mae_meV_per_A"]
    )
    assert abs(f32["energy_mae_meV"] - f64["energy_mae_meV"]) < 2.0
    # the command line re-evaluates a finished run to the same numbers
    assert main(["evaluate", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "test_metrics_float64.json").read_text())["metrics"]
    for key, value in f64.items():
        assert again[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_training_learns_and_writes_artifacts(tmp_path):
    config = make_config("ci", dict(TINY, n_train=20, max_epochs=8, stage_two_start=None))
    result = train(config, tmp_path)
    assert result["status"] == "finished"
    for name in [
        "config.json",
        "metrics.csv",
        "run.json",
        "test_metrics.json",
        "test_predictions.npz",
        "model.pt.gz",
        "checkpoint.pt",
    ]:
        assert (tmp_path / name).is_file(), name
    rows = np.genfromtxt(tmp_path / "metrics.csv", delimiter=",", names=True)
    assert len(rows) == 8
    # it learns: the force error falls well below that of the first epoch
    assert rows["valid_forces_mae_meV_per_A"][-1] < 0.7 * rows["valid_forces_mae_meV_per_A"][0]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["static_batches"] and run["epochs_completed"] == 8


@pytest.mark.parametrize("schedule", [{}, {"schedule": "cycle", "warmup_epochs": 1}])
def test_resume_after_interruption_gives_the_same_run(tmp_path, schedule):
    settings = dict(TINY, **schedule)
    straight = train(make_config("ci", settings), tmp_path / "straight")
    first = train(make_config("ci", dict(settings, max_wall_s=1e-9)), tmp_path / "paused")
    assert first["status"] == "paused" and first["epoch"] == 1
    # the checkpoint alone travels to another folder (another machine) and resumes there
    (tmp_path / "resumed").mkdir()
    shutil.copyfile(tmp_path / "paused" / "checkpoint.pt", tmp_path / "resumed" / "checkpoint.pt")
    resumed = train(make_config("ci", settings), tmp_path / "resumed")
    assert resumed["status"] == "finished" and resumed["epoch"] == 4
    for key, value in straight["test"].items():
        assert resumed["test"][key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    a = np.genfromtxt(tmp_path / "straight" / "metrics.csv", delimiter=",", names=True)
    b = np.genfromtxt(tmp_path / "resumed" / "metrics.csv", delimiter=",", names=True)
    np.testing.assert_allclose(a["valid_loss"], b["valid_loss"], rtol=1e-10)
    np.testing.assert_allclose(a["lr"], b["lr"], rtol=1e-14)
    assert resumed["best_epoch"] == straight["best_epoch"]


def test_resume_with_other_settings_is_refused(tmp_path):
    train(make_config("ci", dict(TINY, max_wall_s=1e-9)), tmp_path)
    with pytest.raises(TrainingError, match="other settings"):
        train(make_config("ci", dict(TINY, lr=0.5)), tmp_path)
    # the checkpoint is at epoch 1: moving stage two before it would rewrite the past
    with pytest.raises(TrainingError, match="stage_two_start can change only"):
        train(make_config("ci", dict(TINY, stage_two_start=0)), tmp_path)


@pytest.mark.parametrize("signals", [1, 2])
def test_signal_pauses_and_the_resumed_run_is_the_same_run(tmp_path, monkeypatch, signals):
    """SIGTERM in the middle of epoch 2 (of 2 steps each): one signal finishes and checkpoints
    epoch 2; a second one stops at once and keeps epoch 1's checkpoint.  Either way the resumed
    run equals an uninterrupted one (the steps of a half-done epoch must not be saved)."""
    straight = train(make_config("ci", TINY), tmp_path / "straight")
    step, calls = StepRunner.step, []

    def step_and_signal(self, batch):
        calls.append(1)
        if len(calls) == 3:  # first step of epoch 2
            for _ in range(signals):
                os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch)

    monkeypatch.setattr(StepRunner, "step", step_and_signal)
    first = train(make_config("ci", TINY), tmp_path / "run")
    assert first == {"status": "paused", "epoch": 3 - signals, "output_dir": str(tmp_path / "run")}
    monkeypatch.setattr(StepRunner, "step", step)
    resumed = train(make_config("ci", TINY), tmp_path / "run")
    assert resumed["status"] == "finished" and resumed["epoch"] == 4
    for key, value in straight["test"].items():
        assert resumed["test"][key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


@pytest.mark.parametrize(
    "setting, message",
    [
        ("checkpoint_every=0", "setting checkpoint_every=0: input should be greater than or equal to 1"),
        ("lr=fast", 'setting lr="fast": input should be a valid number'),
        ("lr=-1", "setting lr=-1: input should be greater than 0"),
        ("max_epochs=10.5", "setting max_epochs=10.5: input should be a valid integer"),
        ("n_train=true", "setting n_train=true: input should be a valid integer"),
        ("amsgrad=1", "setting amsgrad=1: input should be a valid boolean"),
        ("at_wall=stop", "setting at_wall=\"stop\": input should be 'pause' or 'finish'"),
        ("device=gpu", "setting device=\"gpu\": input should be 'auto', 'cpu' or 'cuda'"),
        ("n_valid=1000", "setting n_valid=1000: input should be less than or equal to 999"),
        ("radial_mlp=[16,0]",
         "setting radial_mlp=[16, 0]: item 1: input should be greater than or equal to 1"),
    ],
)
def test_cli_rejects_bad_setting_values_in_one_line(tmp_path, capsys, setting, message):
    assert main(["train", "--out", str(tmp_path / "run"), "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_a_saved_config_is_checked_in_one_line_too():
    """config.json files and saved models go through the same check as the command line."""
    saved = make_config("ci").to_dict()
    assert config_from_dict(saved) == make_config("ci")
    with pytest.raises(ValueError, match=r"^setting lr=-1: input should be greater than 0$"):
        config_from_dict({**saved, "lr": -1})
    with pytest.raises(ValueError, match=r"^unknown setting 'speed'; settings are: amsgrad, "):
        config_from_dict({**saved, "speed": 2})


def test_make_config_normalises_numbers():
    config = make_config(
        "ci",
        {"lr": 1, "max_wall_s": 540, "correlation": np.int64(3), "radial_mlp": (16, np.int64(8))},
    )
    assert isinstance(config.lr, float) and config.max_wall_s == 540.0
    assert type(config.correlation) is int
    assert config.radial_mlp == [16, 8] and all(type(n) is int for n in config.radial_mlp)


SMALL_MODEL = Path(__file__).resolve().parents[1] / "artifacts/mace_ethanol/cpu_small/model.pt.gz"


def test_relax_uses_ases_per_atom_force_norm(tmp_path, capsys):
    from acecourse.training.md import mace_calculator, relax
    from acecourse.training.md import main as md_main

    start = load_rmd17_ethanol("test", indices=[0])[0]
    calculator = mace_calculator(SMALL_MODEL)
    result = relax(start, calculator, fmax=0.05)
    forces = result["atoms"].get_forces()
    # ASE converges on the largest per-atom force norm; report that, not the largest component
    assert result["converged"]
    assert result["max_force_eV_per_A"] == pytest.approx(np.linalg.norm(forces, axis=1).max())
    assert result["max_force_eV_per_A"] < 0.05
    # one energy before the first step and one after each step, no duplicate
    assert len(result["energies_eV"]) == result["steps"] + 1
    assert result["energies_eV"][0] == pytest.approx(
        calculator.get_potential_energy(start.copy()), abs=1e-9
    )
    with pytest.raises(SystemExit) as stop:
        md_main([str(SMALL_MODEL), str(tmp_path / "md.json"), "--steps", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --steps 0 is out of range") and "\n" not in err


def test_cli_bad_input_gives_one_line_error_and_exit_2(tmp_path, capsys, monkeypatch):
    assert main(["train", "--out", str(tmp_path), "--set", "colour=blue"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown setting 'colour'") and "\n" not in err
    assert (
        main(["train", "--profile", "full", "--out", str(tmp_path)]) == 2
        or torch.cuda.is_available()
    )
    monkeypatch.setenv("ACECOURSE_RMD17_DIR", str(tmp_path / "nowhere"))
    assert (
        main(["train", "--out", str(tmp_path / "x"), "--set", f"data_dir={tmp_path / 'nowhere'}"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "rmd17_ethanol_train_01.npz" in err[-1]


def test_cli_start_weights_that_are_not_a_saved_model_give_one_line(tmp_path, capsys):
    plain = tmp_path / "model.pt"
    torch.save({"state_dict": {}}, plain)  # not gzip-compressed, as save_model writes
    argv = ["train", "--out", str(tmp_path / "run"), "--set", f"init_weights={plain}"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {plain}: not a gzip-compressed model (a run's model.pt.gz)"


@pytest.mark.parametrize(
    "command, argv, message",
    [
        (benchmark_main, ["--out", "b.json", "--steps", "0"], "steps=0"),
        (benchmark_main, ["--out", "b.json", "--backends", "e3nn,fast"], "unknown backend 'fast'"),
        (main, ["evaluate", "run", "--batch-size", "-1"], "batch_size=-1"),
    ],
)
def test_cli_rejects_bad_arguments_before_any_work(
    tmp_path, capsys, monkeypatch, command, argv, message
):
    monkeypatch.chdir(tmp_path)
    assert command(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_md_command_keeps_the_temperature_trajectory(tmp_path):
    from acecourse.training.md import main as md_main

    out = tmp_path / "md.json"
    assert md_main([str(SMALL_MODEL), str(out), "--steps", "4", "--every", "2"]) == 0
    record = json.loads(out.read_text())
    # once overwritten by the scalar start temperature: the trajectory's must stay a list
    assert len(record["temperature_K"]) == len(record["time_fs"]) == 3
    assert record["start_temperature_K"] == 300.0
    assert np.shape(record["positions_A"]) == (3, 9, 3)


def test_nve_records_the_positions_of_its_energies():
    """run_nve's positions are those its energies belong to: the first is the start, and the
    calculator gives each recorded potential energy back at the recorded positions."""
    from acecourse.training.md import mace_calculator, run_nve

    start = load_rmd17_ethanol("test", indices=[0])[0]
    calculator = mace_calculator(SMALL_MODEL)
    result = run_nve(start, calculator, n_steps=6, every=3, progress=False)
    positions = result["positions_A"]
    assert positions.shape == (3, 9, 3) == (len(result["time_fs"]), len(start), 3)
    np.testing.assert_array_equal(positions[0], start.positions)  # the start, unmoved
    assert np.all(np.abs(positions[1:] - positions[:-1]).max(axis=(1, 2)) > 1e-4)  # it moves
    for frame, e_pot in zip(positions, result["potential_energy_eV"]):
        atoms = start.copy()
        atoms.positions = frame
        # same float64 model at the same positions: the same energy up to summation order
        assert calculator.get_potential_energy(atoms) == pytest.approx(e_pot, rel=0, abs=1e-9)


def test_benchmark_times_real_training_steps(tmp_path):
    config = make_config("ci", dict(TINY, n_train=20))
    result = benchmark(config, ["e3nn"], steps=6, out_file=tmp_path / "bench.json")
    timing = result["backends"]["e3nn"]
    assert 0 < timing["min_ms_per_step"] <= timing["median_ms_per_step"]
    assert timing["min_ms_per_step"] <= timing["mean_ms_per_step"]
    assert timing["steps_per_epoch"] == 4 and len(timing["losses"]) == 6 + 10  # with warm-up
    assert not timing["cuda_graph_used"]  # no graph on the CPU path
    # they are optimiser steps: the loss moves
    assert timing["losses"][-1] != timing["losses"][0]
    assert json.loads((tmp_path / "bench.json").read_text())["backends"]["e3nn"] == timing


def test_read_metrics_gives_one_record_per_epoch_also_for_one_epoch(tmp_path):
    from acecourse.training.trainer import METRIC_FIELDS, read_metrics, write_metrics_csv

    rows = [{k: float(e + 1) * (i + 1) for i, k in enumerate(METRIC_FIELDS)} for e in range(3)]
    for n in (1, 3):
        write_metrics_csv(rows[:n], tmp_path / "metrics.csv")
        metrics = read_metrics(tmp_path)
        assert metrics.shape == (n,) and metrics.dtype.names == tuple(METRIC_FIELDS)
        assert [float(metrics[k][-1]) for k in METRIC_FIELDS] == [rows[n - 1][k] for k in METRIC_FIELDS]
