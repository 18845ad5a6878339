"""Tests of the MACE training command (acecourse.training), on the CPU in float64."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from acecourse.data.rmd17 import load_rmd17_ethanol, resolve_data_dir
from acecourse.training import make_config, train
from acecourse.training.__main__ import main
from acecourse.training.data import LoaderBatches, StaticBatches, to_atomic_data
from acecourse.training.steps import EMA
from acecourse.training.trainer import TrainingError
from acecourse.training.trainer_loss import loss_function
from acecourse.training.transport import TransportError, pack_checkpoint, unpack_checkpoint

HAVE_DATA = (resolve_data_dir() / "rmd17_ethanol_train_01.npz").is_file()
needs_data = pytest.mark.skipif(
    not HAVE_DATA, reason="rMD17 files not found (set ACECOURSE_RMD17_DIR)"
)

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


@needs_data
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


@needs_data
def test_loss_equals_mace_weighted_energy_forces_loss():
    from mace.modules.loss import WeightedEnergyForcesLoss
    from mace.tools import torch_geometric

    data = to_atomic_data(load_rmd17_ethanol("train", indices=slice(0, 5)), r_max=5.0)
    batch = torch_geometric.batch.Batch.from_data_list(data)
    rng = torch.Generator().manual_seed(0)
    pred = {
        "energy": batch.energy + torch.randn(batch.energy.shape, generator=rng),
        "forces": batch.forces + 0.1 * torch.randn(batch.forces.shape, generator=rng),
    }
    ours = loss_function(pred, batch.to_dict(), 1.0, 1000.0)
    theirs = WeightedEnergyForcesLoss(energy_weight=1.0, forces_weight=1000.0)(batch, pred)
    assert abs(float(ours) - float(theirs)) <= 1e-12 * abs(float(theirs))


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


@needs_data
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


@needs_data
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


@needs_data
def test_resume_after_interruption_gives_the_same_run(tmp_path):
    straight = train(make_config("ci", TINY), tmp_path / "straight")
    first = train(make_config("ci", dict(TINY, max_wall_s=1e-9)), tmp_path / "paused")
    assert first["status"] == "paused" and first["epoch"] == 1
    # the checkpoint travels as small parts to another folder (another machine) and resumes there
    manifest = pack_checkpoint(tmp_path / "paused", tmp_path / "packed", part_mib=0.01)
    assert len(manifest["parts"]) > 1
    unpack_checkpoint(tmp_path / "packed", tmp_path / "resumed")
    resumed = train(make_config("ci", TINY), tmp_path / "resumed")
    assert resumed["status"] == "finished" and resumed["epoch"] == 4
    for key, value in straight["test"].items():
        assert resumed["test"][key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
    a = np.genfromtxt(tmp_path / "straight" / "metrics.csv", delimiter=",", names=True)
    b = np.genfromtxt(tmp_path / "resumed" / "metrics.csv", delimiter=",", names=True)
    np.testing.assert_allclose(a["valid_loss"], b["valid_loss"], rtol=1e-10)


@needs_data
def test_resume_with_other_settings_is_refused(tmp_path):
    train(make_config("ci", dict(TINY, max_wall_s=1e-9)), tmp_path)
    with pytest.raises(TrainingError, match="other settings"):
        train(make_config("ci", dict(TINY, lr=0.5)), tmp_path)


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


def test_packed_checkpoint_round_trip_and_damage(tmp_path, capsys):
    payload = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(payload)
    manifest = pack_checkpoint(tmp_path / "run", tmp_path / "packed", part_mib=0.1)
    assert len(manifest["parts"]) == 3 and manifest["checkpoint_bytes"] == len(payload)
    # parts that arrive in several folders (one per carrying call) are found
    (tmp_path / "packed" / "b").mkdir()
    (tmp_path / "packed" / "checkpoint.part02").rename(
        tmp_path / "packed" / "b" / "checkpoint.part02"
    )
    unpack_checkpoint(tmp_path / "packed", tmp_path / "moved")
    assert (tmp_path / "moved" / "checkpoint.pt").read_bytes() == payload
    # a damaged part is named and nothing is written
    part = tmp_path / "packed" / "checkpoint.part01"
    part.write_bytes(part.read_bytes()[:-1] + b"x")
    with pytest.raises(TransportError, match="checkpoint.part01: truncated or corrupt"):
        unpack_checkpoint(tmp_path / "packed", tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "checkpoint.pt").exists()
    part.unlink()
    assert main(["unpack", str(tmp_path / "packed"), str(tmp_path / "fresh")]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: ") and "checkpoint.part01: part missing" in err and "\n" not in err
    )
    assert main(["pack", str(tmp_path / "nothing"), str(tmp_path / "p")]) == 2
    assert "no checkpoint to pack" in capsys.readouterr().err
