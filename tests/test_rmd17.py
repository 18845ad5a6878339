"""Tests of ``acecourse.data.rmd17``: the shipped split, checked loading, refusing bad files.

Ethanol split 01 ships with the package; nothing here needs ``../shared`` or the network.
Downloads run against an HTTP server on 127.0.0.1 that serves a per-split file, answers as
figshare may (an empty ``HTTP 202`` bot challenge, ``HTTP 404``), or serves a small
``rmd17.tar.bz2`` with the public archive's layout built from the shipped files.
"""

from __future__ import annotations

import http.server
import io
import runpy
import shutil
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from ase import units

from acecourse.data import RMD17DataError, load_rmd17, load_rmd17_ethanol, resolve_data_dir, rmd17
from acecourse.data.__main__ import main as cli

#: The published SHA-256 of split 01 (the course checked its offline copy against these before
#: the files shipped; github.com/andersx/rmd17-npz serves the same bytes).
PUBLISHED = {
    "rmd17_ethanol_train_01.npz": "096946747b8d9dcfa042b44f8debbd3da387dfe1586b659e3be789cc4927316a",
    "rmd17_ethanol_test_01.npz": "c3594a0f93d5992e02f9eb671392fb2e5021b3fa4f902417886966d1e4f64e1e",
}
SHIPPED = rmd17.PACKAGE_DIR
OTHER = "rmd17_ethanol_train_02.npz"  # a split that is not shipped


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch, tmp_path):
    """No ``$ACECOURSE_RMD17_DIR`` from the caller, and a cache of the test's own."""
    monkeypatch.delenv(rmd17.ENV_VAR, raising=False)
    monkeypatch.setattr(rmd17, "cache_dir", lambda: tmp_path / "cache")


def _copy_both(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        shutil.copyfile(SHIPPED / name, folder / name)
    return folder


def _one_line_naming(error: pytest.ExceptionInfo, path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message, message
    return message


# --------------------------------------------------------------------------- the shipped split
def test_the_split_ships_with_its_licence_and_published_hashes() -> None:
    assert resolve_data_dir() == SHIPPED
    for name, digest in PUBLISHED.items():
        assert rmd17.REGISTRY[name][0] == digest
        rmd17.verify_file(SHIPPED / name)
    assert "CC0 1.0" in (SHIPPED / "LICENSE").read_text()
    readme = (SHIPPED / "README.md").read_text()
    assert "CC0 1.0" in readme and "12672038" in readme and "andersx/rmd17-npz" in readme
    assert len(rmd17.REGISTRY) == 100 and len(rmd17.MOLECULES) == 10  # x 5 splits x train/test


def test_unit_conversion_is_ase_kcal_per_mol() -> None:
    assert rmd17.KCAL_PER_MOL == units.kcal / units.mol
    np.testing.assert_allclose(rmd17.KCAL_PER_MOL, 0.0433641, rtol=1e-5)


@pytest.mark.parametrize("split", ["train", "test"])
def test_loads_1000_frames(split: str) -> None:
    frames = load_rmd17_ethanol(split)
    assert len(frames) == 1000
    with np.load(SHIPPED / f"rmd17_ethanol_{split}_01.npz") as npz:
        energies_kcal, forces_kcal, coords = npz["energies"], npz["forces"], npz["coords"]
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


def test_train_and_test_are_disjoint() -> None:
    with (
        np.load(SHIPPED / "rmd17_ethanol_train_01.npz") as train,
        np.load(SHIPPED / "rmd17_ethanol_test_01.npz") as test,
    ):
        assert not set(train["old_indices"].tolist()) & set(test["old_indices"].tolist())


def test_indices_select_frames() -> None:
    assert [a.info["rmd17_index"] for a in load_rmd17_ethanol("test", indices=[3, 7])] == [3, 7]
    assert [a.info["rmd17_index"] for a in load_rmd17_ethanol("test", indices=slice(0, 3))] == [
        0,
        1,
        2,
    ]
    assert len(load_rmd17_ethanol("test", indices=3)) == 1


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="split"):
        load_rmd17_ethanol("valid")
    with pytest.raises(ValueError, match="molecule"):
        load_rmd17("water")
    with pytest.raises(ValueError, match="split_index"):
        load_rmd17("ethanol", split_index=6)
    with pytest.raises(ValueError, match="n_valid"):
        rmd17.train_valid_split(n_valid=0)


def test_train_valid_split_is_950_50_and_seeded() -> None:
    train, valid = rmd17.train_valid_split()
    assert len(train) == 950 and len(valid) == 50
    assert not set(train) & set(valid)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(1000))
    np.testing.assert_array_equal(valid, rmd17.train_valid_split()[1])


# --------------------------------------------------------------------------- folders and checks
def test_a_folder_setting_replaces_the_shipped_files(tmp_path, monkeypatch) -> None:
    assert resolve_data_dir(tmp_path) == tmp_path
    monkeypatch.setenv(rmd17.ENV_VAR, str(_copy_both(tmp_path / "env")))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path) == tmp_path  # the argument comes first
    assert len(load_rmd17_ethanol("test")) == 1000


def test_a_setting_without_the_files_fails_instead_of_falling_back(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("test")
    message = _one_line_naming(error, tmp_path / "nowhere" / "rmd17_ethanol_test_01.npz")
    assert rmd17.ENV_VAR in message and "python -m acecourse.data download" in message
    assert not (tmp_path / "cache").exists()  # nothing downloaded


def test_truncated_file_is_refused(tmp_path) -> None:
    directory = _copy_both(tmp_path / "d")
    path = directory / "rmd17_ethanol_train_01.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RMD17DataError, match="truncated or altered") as error:
        load_rmd17_ethanol("train", data_dir=directory)
    _one_line_naming(error, path)
    assert len(load_rmd17_ethanol("test", data_dir=directory)) == 1000  # the other file is fine


def test_altered_file_is_refused_and_a_rebuilt_one_accepted(tmp_path) -> None:
    """A split rebuilt from the archive differs in bytes, not in arrays: accepted; one altered
    force component: refused."""
    path = tmp_path / "rmd17_ethanol_test_01.npz"
    with np.load(SHIPPED / path.name) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez_compressed(path, **arrays)
    rmd17.verify_file(path)
    arrays["forces"][0, 0, 0] += 1e-9
    np.savez(path, **arrays)
    with pytest.raises(RMD17DataError) as error:
        rmd17.verify_file(path)
    _one_line_naming(error, path)


def test_a_split_not_downloaded_needs_download_true() -> None:
    with pytest.raises(RMD17DataError, match="download=True"):
        load_rmd17("ethanol", split_index=2, download=False)


# --------------------------------------------------------------------------- downloads
def _archive_bytes() -> bytes:
    """A small rMD17 archive in the public layout: ``npz_data/rmd17_ethanol.npz`` holds the
    shipped train frames then the test frames; split 02's indices select them in that order, so
    the rebuilt ``train_02`` has the arrays of the shipped ``train_01``."""
    with (
        np.load(SHIPPED / "rmd17_ethanol_train_01.npz") as train,
        np.load(SHIPPED / "rmd17_ethanol_test_01.npz") as test,
    ):
        full = {
            k: train[k] if k == "nuclear_charges" else np.concatenate([train[k], test[k]])
            for k in train.files
        }
    npz = io.BytesIO()
    np.savez(npz, **full)
    members = {
        "rmd17/npz_data/rmd17_ethanol.npz": npz.getvalue(),
        "rmd17/splits/index_train_02.csv": "\n".join(map(str, range(1000))).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Server(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        status, body = self.server.routes.get(self.path, (404, b"Not Found"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """An HTTP server on 127.0.0.1: yields (base URL, routes to fill, requested paths)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    httpd.routes, httpd.hits = {}, []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setattr(rmd17, "SPLIT_FILES_URL", f"{base}/split/")
    monkeypatch.setattr(rmd17, "ARCHIVE_URLS", (f"{base}/waf", f"{base}/archive"))
    # train_02 stands for any split not shipped; here it has the shipped train_01's bytes
    monkeypatch.setitem(rmd17.REGISTRY, OTHER, rmd17.REGISTRY["rmd17_ethanol_train_01.npz"])
    yield base, httpd.routes, httpd.hits
    httpd.shutdown()
    httpd.server_close()


def test_a_split_not_shipped_comes_from_its_per_split_file(server, tmp_path, capsys) -> None:
    _, routes, hits = server
    routes[f"/split/{OTHER}"] = (200, (SHIPPED / "rmd17_ethanol_train_01.npz").read_bytes())
    frames = load_rmd17("ethanol", "train", split_index=2, indices=[5])
    assert hits == [f"/split/{OTHER}"] and [a.info["rmd17_index"] for a in frames] == [5]
    assert (tmp_path / "cache" / OTHER).is_file()
    assert "1 GB" not in capsys.readouterr().err
    load_rmd17("ethanol", "train", split_index=2, indices=[5])  # cached: no second request
    assert len(hits) == 1


def test_a_failed_split_file_falls_back_to_the_archive(server, tmp_path, capsys) -> None:
    _, routes, hits = server
    routes["/waf"] = (202, b"")  # figshare's bot challenge: skipped
    routes["/archive"] = (200, _archive_bytes())
    frames = load_rmd17("ethanol", "train", split_index=2, indices=[0, 999])
    assert hits == [f"/split/{OTHER}", "/waf", "/archive"]
    assert "about 1 GB" in capsys.readouterr().err
    reference = load_rmd17_ethanol("train", indices=[0, 999])
    for got, want in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(got.positions, want.positions)
        assert got.info[rmd17.ENERGY_KEY] == want.info[rmd17.ENERGY_KEY]
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached == sorted([OTHER, "rmd17.tar.bz2"])  # no partial file left
    (tmp_path / "cache" / OTHER).unlink()  # a second split from the archive: no new download
    load_rmd17("ethanol", "train", split_index=2, indices=[0])
    assert hits[3:] == [f"/split/{OTHER}"] and "1 GB" not in capsys.readouterr().err


def test_altered_downloads_are_refused_and_leave_nothing(server, tmp_path) -> None:
    _, routes, _ = server
    altered = bytearray((SHIPPED / "rmd17_ethanol_train_01.npz").read_bytes())
    altered[len(altered) // 2] ^= 1
    routes[f"/split/{OTHER}"] = (200, bytes(altered))
    routes["/waf"] = (202, b"")
    with pytest.raises(RMD17DataError) as error:
        load_rmd17("ethanol", "train", split_index=2)
    message = str(error.value)
    assert "\n" not in message and "not a bzip2 archive" in message and "404" in message
    assert not (tmp_path / "cache" / OTHER).exists()


# --------------------------------------------------------------------------- command line
def test_cli_copies_the_shipped_split_and_prints_the_export_line(tmp_path, capsys) -> None:
    target = tmp_path / "with space"
    assert cli(["download", "--dir", str(target)]) == 0
    assert capsys.readouterr().out == f"export {rmd17.ENV_VAR}='{target}'\n"  # shell-quoted
    for name, digest in PUBLISHED.items():
        assert rmd17.REGISTRY[name][0] == digest
        rmd17.verify_file(target / name)


@pytest.mark.parametrize(
    "argv", [[], ["upload"], ["download"], ["download", "--dir", "x", "--split-index", "9"]]
)
def test_cli_bad_arguments_exit_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        cli(argv)
    assert stop.value.code == 2 and "error" in capsys.readouterr().err


def test_cli_runs_as_a_module(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["acecourse.data", "download", "--dir", str(tmp_path)])
    monkeypatch.delitem(sys.modules, "acecourse.data.__main__")  # run afresh, as python -m does
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("acecourse.data", run_name="__main__")
    assert stop.value.code == 0 and capsys.readouterr().out.startswith("export ")
