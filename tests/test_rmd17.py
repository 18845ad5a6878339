"""Tests of ``acecourse.data.rmd17``: loading rMD17 ethanol split 01 and refusing bad files.

Tests that need the real files use the course's offline mirror (``../shared/data/rmd17`` next to
the repository, or ``$ACECOURSE_RMD17_DIR``) and are skipped, with the reason, when it is absent.

Downloads never use the network: ``file://`` folders stand in for a mirror, a small
``rmd17.tar.bz2`` built from the mirror's two files stands in for the public archive (same
layout, and the rebuilt files have the published content hashes), and an HTTP server on
127.0.0.1 answers as figshare's addresses do (an empty ``HTTP 202`` bot challenge, an empty
``HTTP 200``, an HTML page, ``HTTP 403``, or the archive), so the fall-back from one address to
the next really runs.
"""

from __future__ import annotations

import http.server
import io
import shutil
import tarfile
import threading
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


# --------------------------------------------------------------------------- download and CLI
def _serve_copies(tmp_path: Path) -> str:
    """A folder with copies of the split files, and its file:// URL (a stand-in for a mirror)."""
    served = tmp_path / "served"
    served.mkdir()
    _copy_both(served)
    return served.as_uri()


def test_missing_file_error_names_the_download_command(tmp_path) -> None:
    with pytest.raises(RMD17DataError) as error:
        load_rmd17_ethanol("test", data_dir=tmp_path)
    message = str(error.value)
    assert "python -m acecourse.data download --dir DIR" in message, message
    assert "download=True" in message and rmd17.ENV_VAR in message, message


@needs_data
def test_download_true_uses_the_base_url_override(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.URL_ENV_VAR, _serve_copies(tmp_path))
    target = tmp_path / "target"
    frames = load_rmd17_ethanol("test", data_dir=target, indices=[0, 999], download=True)
    assert [a.info["rmd17_index"] for a in frames] == [0, 999]
    for name in FILES:  # both files fetched, byte-identical to the published ones
        assert rmd17.sha256_of(target / name) == rmd17.SHA256[name]
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)  # no partial file left


@needs_data
def test_download_refuses_an_altered_file_and_leaves_nothing(tmp_path) -> None:
    base = _serve_copies(tmp_path)
    served = tmp_path / "served" / "rmd17_ethanol_test_01.npz"
    with np.load(served) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["forces"][0, 0, 0] += 1e-9  # one force component altered
    np.savez(served, **arrays)
    target = tmp_path / "target"
    with pytest.raises(RMD17DataError) as error:
        rmd17.download_split_files(target, base)
    assert "\n" not in str(error.value) and "truncated or altered" in str(error.value)
    # the good file is kept, the altered one never gets its final name
    assert sorted(p.name for p in target.iterdir()) == ["rmd17_ethanol_train_01.npz"]


def test_unreachable_url_is_a_one_line_error(tmp_path) -> None:
    url = (tmp_path / "no_such_folder").as_uri()
    with pytest.raises(RMD17DataError) as error:
        rmd17.download_split_files(tmp_path / "target", url)
    message = str(error.value)
    assert "\n" not in message and f"{url}/rmd17_ethanol_train_01.npz" in message, message
    assert not list((tmp_path / "target").iterdir())


def test_not_an_archive_is_a_one_line_error(tmp_path) -> None:
    fake = tmp_path / "fake.tar.bz2"
    fake.write_bytes(b"not a bzip2 archive")
    with pytest.raises(RMD17DataError, match="not a readable rMD17 archive") as error:
        rmd17.download_rmd17(tmp_path / "target", url=fake.as_uri())
    assert "\n" not in str(error.value)


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    from acecourse.data.__main__ import main

    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's usage errors
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "argv",
    [[], ["upload", "--dir", "x"], ["download"], ["download", "--dir"]],
    ids=["no-command", "unknown-command", "no-dir", "empty-dir"],
)
def test_cli_bad_input_exits_2_with_one_line(argv, capsys) -> None:
    status, out, err = _cli(argv, capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "error" in err, err


def test_cli_dir_that_is_a_file_exits_2(tmp_path, capsys) -> None:
    (tmp_path / "a_file").write_text("")
    status, out, err = _cli(["download", "--dir", str(tmp_path / "a_file")], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1 and "not a folder" in err


def test_cli_failed_download_exits_1_with_one_line(tmp_path, capsys) -> None:
    url = (tmp_path / "nowhere").as_uri()
    status, out, err = _cli(["download", "--dir", str(tmp_path / "d"), "--url", url], capsys)
    assert status == 1 and out == "" and err.count("\n") == 1 and url in err, err


@needs_data
def test_cli_downloads_checks_and_prints_the_export_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv(rmd17.URL_ENV_VAR, _serve_copies(tmp_path))
    target = tmp_path / "with space"
    status, out, err = _cli(["download", "--dir", str(target)], capsys)
    assert status == 0, err
    export = out.strip().splitlines()[-1]
    assert export == f"export {rmd17.ENV_VAR}='{target}'", out  # shell-quoted
    for name in FILES:
        assert rmd17.sha256_of(target / name) == rmd17.SHA256[name]
    # a second run finds the checked files and fetches nothing (the source is gone)
    monkeypatch.setenv(rmd17.URL_ENV_VAR, (tmp_path / "gone").as_uri())
    status, out, _ = _cli(["download", "--dir", str(target)], capsys)
    assert status == 0 and out.strip().splitlines()[-1] == export


def test_cli_runs_as_a_module(tmp_path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "acecourse.data", "download"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "--dir" in result.stderr, result.stderr


# --------------------------------------------------------------------------- the public archive
def _archive_bytes() -> bytes:
    """A small rMD17 archive with the public archive's layout: ``npz_data/rmd17_ethanol.npz``
    holds the mirror's train frames then its test frames, and the split indices select them
    back (0..999 and 1000..1999), so that the rebuilt files have the published content."""
    with (
        np.load(DATA_DIR / "rmd17_ethanol_train_01.npz") as train,
        np.load(DATA_DIR / "rmd17_ethanol_test_01.npz") as test,
    ):
        full = {
            key: train[key] if key == "nuclear_charges" else np.concatenate([train[key], test[key]])
            for key in train.files
        }
    members = {"npz_data/rmd17_ethanol.npz": io.BytesIO()}
    np.savez(members["npz_data/rmd17_ethanol.npz"], **full)
    members["splits/index_train_01.csv"] = io.BytesIO(
        "\n".join(str(i) for i in range(1000)).encode()
    )
    members["splits/index_test_01.csv"] = io.BytesIO(
        "\n".join(str(i) for i in range(1000, 2000)).encode()
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"rmd17/{name}")
            info.size = len(data.getvalue())
            tar.addfile(info, io.BytesIO(data.getvalue()))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    if not HAVE_DATA:
        pytest.skip(f"rMD17 ethanol split 01 not found (searched {DATA_DIR})")
    path = tmp_path_factory.mktemp("archive") / "rmd17.tar.bz2"
    path.write_bytes(_archive_bytes())
    return path


class _FigshareLike(http.server.BaseHTTPRequestHandler):
    """Answers as the public addresses may: see :data:`ROUTES`."""

    def do_GET(self):
        self.server.hits.append(self.path)
        status, headers, body = self.server.routes[self.path.split("?")[0]]
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # check-url reads the start of an archive and hangs up, as it should

    def log_message(self, format, *args):
        pass


def _routes(archive_bytes: bytes) -> dict[str, tuple[int, dict, bytes]]:
    return {
        # figshare.com/ndownloader/files/<id> to a script: an empty 202 and a WAF header
        "/waf": (202, {"x-amzn-waf-action": "challenge"}, b""),
        "/empty": (200, {}, b""),
        "/html": (200, {"Content-Type": "text/html"}, b"<html><body>Just a moment</body></html>"),
        "/forbidden": (403, {}, b"Forbidden"),
        "/archive": (200, {"Content-Type": "application/octet-stream"}, archive_bytes),
    }


@pytest.fixture
def figshare(monkeypatch, request):
    """An HTTP server on 127.0.0.1; yields (base URL, list of requested paths)."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    archive_bytes = b""
    if "archive" in request.fixturenames:
        archive_bytes = request.getfixturevalue("archive").read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FigshareLike)
    httpd.routes = _routes(archive_bytes)
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.hits
    httpd.shutdown()
    httpd.server_close()


def test_public_addresses_avoid_figshares_bot_challenge() -> None:
    urls = rmd17.RMD17_ARCHIVE_URLS
    assert urls[0] == "https://api.figshare.com/v2/file/download/23950376"
    assert rmd17.RMD17_ARCHIVE_URL == urls[0]
    assert urls[1] == "https://ndownloader.figshare.com/files/23950376"
    # the address that answers scripts with a challenge is not among them
    assert not any(u.startswith("https://figshare.com/ndownloader/") for u in urls)


def test_archive_download_rebuilds_the_published_splits(tmp_path, archive) -> None:
    """The archive path (Colab's and Binder's default): extraction, re-indexing, content hash."""
    target = tmp_path / "target"
    assert rmd17.download_rmd17(target, url=archive.as_uri()) == target
    for name in FILES:
        assert rmd17.content_sha256(target / name) == rmd17.CONTENT_SHA256[name]
        rmd17.verify_file(target / name)
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)  # no partial file left
    frames = load_rmd17_ethanol("test", data_dir=target, indices=[0, 999])
    reference = load_rmd17_ethanol("test", indices=[0, 999])
    for got, want in zip(frames, reference, strict=True):
        np.testing.assert_array_equal(got.positions, want.positions)
        assert got.info[rmd17.ENERGY_KEY] == want.info[rmd17.ENERGY_KEY]


def test_archive_with_other_frames_is_refused_and_leaves_nothing(tmp_path, archive) -> None:
    """Split indices that select other frames give files with the wrong content: refused."""
    with tarfile.open(archive, "r:bz2") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar}
    members["rmd17/splits/index_test_01.csv"] = "\n".join(
        str(i) for i in range(999, 1999)
    ).encode()  # shifted by one frame
    altered = tmp_path / "altered.tar.bz2"
    with tarfile.open(altered, "w:bz2") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "target"
    with pytest.raises(RMD17DataError, match="truncated or altered"):
        rmd17.download_rmd17(target, url=altered.as_uri())
    # the train file was good and is kept; the test file never gets its final name
    assert sorted(p.name for p in target.iterdir()) == ["rmd17_ethanol_train_01.npz"]


def test_download_falls_back_past_a_bot_challenge(tmp_path, figshare, archive) -> None:
    base, hits = figshare
    target = tmp_path / "target"
    rmd17.download_rmd17(target, url=[f"{base}/waf", f"{base}/archive"])
    assert hits == ["/waf", "/archive"]  # the challenge was met first, then the next address
    for name in FILES:
        rmd17.verify_file(target / name)
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)


def test_loader_tries_the_public_addresses_in_order(tmp_path, figshare, archive, monkeypatch):
    """``load_rmd17_ethanol(..., download=True)`` (the setup cell's call) walks the addresses."""
    base, hits = figshare
    monkeypatch.delenv(rmd17.URL_ENV_VAR, raising=False)
    monkeypatch.setattr(
        rmd17, "RMD17_ARCHIVE_URLS", (f"{base}/waf", f"{base}/empty", f"{base}/archive")
    )
    frames = load_rmd17_ethanol("train", data_dir=tmp_path / "d", indices=[5], download=True)
    assert [a.info["rmd17_index"] for a in frames] == [5]
    assert hits == ["/waf", "/empty", "/archive"]


def test_every_source_failing_names_each_cause(tmp_path, figshare) -> None:
    base, hits = figshare
    urls = [f"{base}/{name}" for name in ("waf", "empty", "html", "forbidden")]
    with pytest.raises(RMD17DataError) as error:
        rmd17.download_rmd17(tmp_path / "target", url=urls)
    message = str(error.value)
    assert "\n" not in message, message
    assert hits == ["/waf", "/empty", "/html", "/forbidden"]
    for url, cause in zip(
        urls,
        (
            "HTTP 202 with a bot challenge (x-amzn-waf-action: challenge)",
            "the answer was empty (0 bytes)",
            "not bzip2 (first bytes b'<ht')",
            "HTTP 403 instead of the file",
        ),
        strict=True,
    ):
        assert f"{url}" in message and cause in message, (cause, message)
    assert rmd17.URL_ENV_VAR in message and rmd17.ARCHIVE_COMMAND in message, message
    assert not list((tmp_path / "target").iterdir())


def test_one_failing_source_still_says_what_to_do(tmp_path, figshare) -> None:
    base, _ = figshare
    with pytest.raises(RMD17DataError) as error:
        rmd17.download_rmd17(tmp_path / "target", url=f"{base}/waf")
    message = str(error.value)
    assert "\n" not in message and "bot challenge" in message and rmd17.URL_ENV_VAR in message


def test_check_url_reads_the_start_of_each_address(figshare, archive, capsys) -> None:
    base, _ = figshare
    assert rmd17.check_url(f"{base}/archive").startswith("bzip2 archive (1024 bytes read)")
    with pytest.raises(RMD17DataError, match="bot challenge"):
        rmd17.check_url(f"{base}/waf")
    with pytest.raises(RMD17DataError, match="does not start a bzip2 archive"):
        rmd17.check_url(f"{base}/html")
    status, out, err = _cli(["check-url", f"{base}/waf", f"{base}/archive"], capsys)
    assert status == 0 and err == "", err
    assert out.splitlines()[0].startswith(f"FAILED  could not download {base}/waf: HTTP 202")
    assert out.splitlines()[1].startswith(f"ok      {base}/archive: bzip2 archive")
    status, out, err = _cli(["check-url", f"{base}/forbidden"], capsys)
    assert status == 1 and err.count("\n") == 1 and "no address serves" in err, err


def test_cli_rebuilds_the_splits_from_an_archive_file(tmp_path, archive, capsys) -> None:
    target = tmp_path / "target"
    status, out, err = _cli(["download", "--dir", str(target), "--archive", str(archive)], capsys)
    assert status == 0, err
    assert out.strip().splitlines()[-1] == f"export {rmd17.ENV_VAR}={target}"
    for name in FILES:
        rmd17.verify_file(target / name)
