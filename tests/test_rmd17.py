"""Tests of ``acecourse.data.rmd17``: loading rMD17 ethanol split 01 and refusing bad files.

Tests that need the real files use the course's offline mirror (``../shared/data/rmd17`` next to
the repository, or ``$ACECOURSE_RMD17_DIR``) and are skipped, with the reason, when it is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import units

from acecourse.data import RMD17DataError, load_rmd17_ethanol, resolve_data_dir, rmd17

FILES = tuple(rmd17.SHA256)
DATA_DIR = resolve_data_dir()
HAVE_DATA = all((DATA_DIR / name).is_file() for name in FILES)
needs_data = pytest.mark.skipif(
    not HAVE_DATA,
    reason=f"rMD17 ethanol split 01 not found (searched {DATA_DIR}; set {rmd17.ENV_VAR})",
)


def test_unit_conversion_is_ase_kcal_per_mol() -> None:
    assert rmd17.KCAL_PER_MOL == units.kcal / units.mol
    np.testing.assert_allclose(rmd17.KCAL_PER_MOL, 0.0433641, rtol=1e-5)


def test_search_order_prefers_argument_then_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.ENV_VAR, str(tmp_path / "from_env"))
    assert rmd17._candidate_dirs(tmp_path)[0] == tmp_path
    assert rmd17._candidate_dirs(tmp_path) == [tmp_path]
    # a set variable is the only candidate: a wrong setting fails instead of falling back
    assert rmd17._candidate_dirs(None) == [tmp_path / "from_env"]
    monkeypatch.delenv(rmd17.ENV_VAR)
    candidates = rmd17._candidate_dirs(None)
    assert candidates[0] == rmd17._REPO_ROOT.parent / "shared" / "data" / "rmd17"
    assert candidates[1] == Path.home() / ".cache" / "acecourse" / "rmd17"


@needs_data
def test_wrong_environment_variable_fails_instead_of_falling_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(RMD17DataError, match="nowhere"):
        load_rmd17_ethanol("test")


@needs_data
def test_rebuilt_file_with_same_arrays_is_accepted(tmp_path) -> None:
    """A split rebuilt from the public archive differs in bytes but not in content."""
    source = rmd17.resolve_data_dir() / "rmd17_ethanol_test_01.npz"
    with np.load(source) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez_compressed(tmp_path / source.name, **arrays)  # other bytes, same arrays
    assert rmd17.sha256_of(tmp_path / source.name) != rmd17.SHA256[source.name]
    rmd17.verify_file(tmp_path / source.name)
    arrays["forces"][0, 0, 0] += 1e-9
    np.savez(tmp_path / source.name, **arrays)
    with pytest.raises(RMD17DataError):
        rmd17.verify_file(tmp_path / source.name)


@needs_data
def test_integer_index_gives_one_frame() -> None:
    assert len(load_rmd17_ethanol("test", indices=3)) == 1


@needs_data
@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_1000_frames(split: str) -> None:
    frames = load_rmd17_ethanol(split)
    assert len(frames) == 1000
    with np.load(DATA_DIR / f"rmd17_ethanol_{split}_01.npz") as npz:
        energies_kcal = npz["energies"]
        forces_kcal = npz["forces"]
        coords = npz["coords"]
    for k in (0, 499, 999):
        atoms = frames[k]
        assert atoms.get_chemical_formula() == "C2H6O"
        assert atoms.info["rmd17_index"] == k
        assert atoms.info["config_type"] == f"rmd17_{split}"
        np.testing.assert_array_equal(atoms.positions, coords[k])
        np.testing.assert_allclose(
            atoms.info[rmd17.ENERGY_KEY], energies_kcal[k] * units.kcal / units.mol, rtol=1e-15
        )
        np.testing.assert_allclose(
            atoms.arrays[rmd17.FORCES_KEY], forces_kcal[k] * units.kcal / units.mol, rtol=1e-15
        )
    # Total energies of ethanol at PBE/def2-SVP are about -97,000 kcal/mol, i.e. -4,200 eV.
    energies = np.array([a.info[rmd17.ENERGY_KEY] for a in frames])
    assert np.all((energies > -4300) & (energies < -4100)), (energies.min(), energies.max())


@needs_data
def test_train_and_test_are_disjoint() -> None:
    with (
        np.load(DATA_DIR / "rmd17_ethanol_train_01.npz") as train,
        np.load(DATA_DIR / "rmd17_ethanol_test_01.npz") as test,
    ):
        assert not set(train["old_indices"].tolist()) & set(test["old_indices"].tolist())


@needs_data
def test_indices_select_frames() -> None:
    frames = load_rmd17_ethanol("test", indices=[3, 7])
    assert [a.info["rmd17_index"] for a in frames] == [3, 7]
    assert [a.info["rmd17_index"] for a in load_rmd17_ethanol("test", indices=slice(0, 3))] == [
        0,
        1,
        2,
    ]


def _copy_both(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copyfile(DATA_DIR / name, tmp_path / name)
    return tmp_path


def _assert_one_line_naming(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message, message
    assert str(path) in message, message


@needs_data
def test_truncated_file_is_refused(tmp_path) -> None:
    directory = _copy_both(tmp_path)
    path = directory / "rmd17_ethanol_train_01.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("train", data_dir=directory)
    _assert_one_line_naming(error, path)
    assert "truncated or altered" in str(error.value)
    assert len(load_rmd17_ethanol("test", data_dir=directory)) == 1000  # the other file is fine


@needs_data
def test_altered_file_is_refused(tmp_path) -> None:
    directory = _copy_both(tmp_path)
    path = directory / "rmd17_ethanol_test_01.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # flip one bit: same size, different content
    path.write_bytes(bytes(data))
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("test", data_dir=directory)
    _assert_one_line_naming(error, path)


def test_missing_directory_is_refused(tmp_path) -> None:
    missing = tmp_path / "no_such_dir"
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("train", data_dir=missing)
    _assert_one_line_naming(error, missing / "rmd17_ethanol_train_01.npz")
    assert rmd17.ENV_VAR in str(error.value)


def test_missing_file_is_refused(tmp_path) -> None:
    (tmp_path / "rmd17_ethanol_train_01.npz").write_bytes(b"")
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("test", data_dir=tmp_path)
    _assert_one_line_naming(error, tmp_path / "rmd17_ethanol_test_01.npz")


def test_environment_variable_is_used(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.ENV_VAR, str(tmp_path))
    if HAVE_DATA:
        _copy_both(tmp_path)
        assert resolve_data_dir() == tmp_path
        assert len(load_rmd17_ethanol("test")) == 1000
    else:
        assert resolve_data_dir() == tmp_path


def test_bad_split_and_bad_valid_size() -> None:
    with pytest.raises(ValueError, match="split"):
        load_rmd17_ethanol("valid")
    with pytest.raises(ValueError, match="n_valid"):
        rmd17.train_valid_split(n_valid=0)


def test_train_valid_split_is_950_50_and_seeded() -> None:
    train, valid = rmd17.train_valid_split()
    assert len(train) == 950 and len(valid) == 50
    assert not set(train) & set(valid)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(1000))
    _, valid2 = rmd17.train_valid_split()
    np.testing.assert_array_equal(valid, valid2)
