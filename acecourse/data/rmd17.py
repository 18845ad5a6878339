"""rMD17 ethanol, split 01: checked loading into ASE ``Atoms``.

The revised MD17 data set (Christensen & von Lilienfeld, 2020) gives PBE/def2-SVP energies and
forces.  Split 01 has 1,000 training and 1,000 test frames of ethanol in two ``.npz`` files.
This module finds those files in a data directory, checks their SHA-256 against the published
checksums, converts kcal/mol to eV with :mod:`ase.units`, and returns ASE ``Atoms``.

Reference labels are stored in ``atoms.info["REF_energy"]`` (eV, total energy of the molecule)
and ``atoms.arrays["REF_forces"]`` (eV/Å), names that cannot collide with the ``energy`` and
``forces`` keys of an ASE calculator (mace-torch's ``--energy_key``/``--forces_key`` accept them).

Where the files come from, in order: the ``data_dir`` argument, the environment variable
``ACECOURSE_RMD17_DIR``, ``../shared/data/rmd17`` next to the repository (the course's offline
mirror), and ``~/.cache/acecourse/rmd17``.  With ``download=True`` missing files are fetched from
the public figshare record of rMD17 into the first of those directories (``~/.cache/acecourse/rmd17``
when neither the argument nor the variable is set); ``python -m acecourse.data download --dir DIR``
does the same from a shell.  The environment variable ``ACECOURSE_RMD17_URL`` replaces the public
archive by a folder (``https://`` or ``file://``) that serves the two split files themselves, e.g.
a mirror; every downloaded file is checked against its SHA-256 as any other.

The public archive is tried at each address of :data:`RMD17_ARCHIVE_URLS` in turn.  figshare's
older address ``figshare.com/ndownloader/files/<id>`` answers scripts with an empty ``HTTP 202``
and the header ``x-amzn-waf-action: challenge`` (a bot check meant for browsers), so the primary
address is figshare's API, which redirects to the file.  Anything but ``HTTP 200`` with a bzip2
body counts as a failure of that address, and the error, if every address fails, names each cause
and what to do.  ``python -m acecourse.data check-url`` asks each address for its first kilobyte
(a network check for maintainers; the tests never use the network).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from ase import Atoms, units

ENV_VAR = "ACECOURSE_RMD17_DIR"
"""Environment variable naming the directory that holds the rMD17 split files."""

URL_ENV_VAR = "ACECOURSE_RMD17_URL"
"""Environment variable: base URL of a folder serving the two split files (replaces the archive)."""

DOWNLOAD_COMMAND = "python -m acecourse.data download --dir DIR"
"""The shell command that fetches and checks the split files (``acecourse/data/__main__.py``)."""

ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"

#: SHA-256 of the split-01 files (copied from the mirror's SHA256SUMS).
SHA256 = {
    "rmd17_ethanol_train_01.npz": "096946747b8d9dcfa042b44f8debbd3da387dfe1586b659e3be789cc4927316a",
    "rmd17_ethanol_test_01.npz": "c3594a0f93d5992e02f9eb671392fb2e5021b3fa4f902417886966d1e4f64e1e",
}

#: SHA-256 of the arrays nuclear_charges, coords, energies, forces (in this order, as bytes).
CONTENT_SHA256 = {
    "rmd17_ethanol_train_01.npz": "4823f64023efe126410568375725f999ef7035e19bea1ee0f5148ca3da1eff9c",
    "rmd17_ethanol_test_01.npz": "cc94742a4ba08b02100e1dd728b0177c8e8fe2d23bb1a6d5a286aedf592dced2",
}

#: Public sources of the rMD17 archive (figshare article 12672038, file 23950376: a 1 GB tar.bz2
#: with all molecules), tried in this order.  figshare's API redirects to the file without the bot
#: challenge of ``figshare.com/ndownloader/...``; ``ndownloader.figshare.com`` redirects to the
#: same file; the Materials Cloud address is a copy of the same archive seen in other projects'
#: download code (not reachable from the course's machines, so unverified; its content is checked
#: like any other).
RMD17_ARCHIVE_URLS = (
    "https://api.figshare.com/v2/file/download/23950376",
    "https://ndownloader.figshare.com/files/23950376",
    "https://archive.materialscloud.org/records/pfffs-fff86/files/rmd17.tar.bz2?download=1",
)
RMD17_ARCHIVE_URL = RMD17_ARCHIVE_URLS[0]
"""The primary address of the public archive."""

RMD17_RECORD = "https://doi.org/10.6084/m9.figshare.12672038"
"""The rMD17 record, for a reader who downloads the archive in a browser."""

ARCHIVE_COMMAND = "python -m acecourse.data download --dir DIR --archive rmd17.tar.bz2"
"""The shell command that rebuilds the split files from an archive downloaded by hand."""

BZIP2_MAGIC = b"BZh"
TIMEOUT_S = 60
"""Seconds without an answer (per connection or read) before a download attempt gives up."""

_USER_AGENT = "acecourse-rmd17-downloader (python urllib)"

KCAL_PER_MOL = units.kcal / units.mol  # eV per (kcal/mol)

_REPO_ROOT = Path(__file__).resolve().parents[2]


class RMD17DataError(RuntimeError):
    """The rMD17 files are missing, truncated or altered."""


def _candidate_dirs(data_dir: str | os.PathLike | None) -> list[Path]:
    """Folders to look in.  An explicit argument, or else the environment variable, is the only
    candidate: a setting that names a folder without the files must fail, not fall back."""
    if data_dir is not None:
        return [Path(data_dir)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    return [
        _REPO_ROOT.parent / "shared" / "data" / "rmd17",
        Path.home() / ".cache" / "acecourse" / "rmd17",
    ]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the first candidate directory that holds both split files (or the first candidate).

    Parameters
    ----------
    data_dir
        Explicit directory; when given it is the only candidate.
    """
    candidates = _candidate_dirs(data_dir)
    for d in candidates:
        if all((d / name).is_file() for name in SHA256):
            return d
    return candidates[0]


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_sha256(path: Path) -> str:
    """SHA-256 of the arrays (charges, coordinates, energies, forces) of a split file."""
    h = hashlib.sha256()
    with np.load(path) as npz:
        for key in ("nuclear_charges", "coords", "energies", "forces"):
            h.update(np.ascontiguousarray(npz[key]).tobytes())
    return h.hexdigest()


def verify_file(path: Path, expected_name: str | None = None) -> None:
    """Raise :class:`RMD17DataError` unless ``path`` holds the published split.

    A file passes if its bytes have the mirror's SHA-256 or, for a file rebuilt by
    :func:`download_rmd17` from the public archive, if its arrays have the mirror's content hash.
    ``expected_name`` is the split file's name when ``path`` is a temporary name for it.
    """
    name = expected_name or path.name
    if not path.is_file():
        raise RMD17DataError(
            f"{path} not found: fetch rMD17 ethanol split 01 with `{DOWNLOAD_COMMAND}` and set "
            f"{ENV_VAR}=DIR, or in Python call load_rmd17_ethanol(..., download=True)"
        )
    digest = sha256_of(path)
    if digest == SHA256[name]:
        return
    try:
        content_ok = content_sha256(path) == CONTENT_SHA256[name]
    except Exception:  # noqa: BLE001 (not a readable npz: truncated or altered)
        content_ok = False
    if not content_ok:
        raise RMD17DataError(
            f"{path} has SHA-256 {digest[:12]}…, expected {SHA256[name][:12]}… "
            "(truncated or altered): delete it and download it again (download=True)"
        )


def _http_problem(status: int | None, headers) -> str:
    """Why an HTTP answer is not the file, in a few words."""
    if headers is not None and headers.get("x-amzn-waf-action"):
        action = headers.get("x-amzn-waf-action")
        return (
            f"HTTP {status} with a bot challenge (x-amzn-waf-action: {action}) instead of the file"
        )
    return f"HTTP {status} instead of the file (HTTP 200)"


def _fetch(url: str, destination, limit: int | None = None) -> int:
    """Copy the resource at ``url`` into the open binary file ``destination``; return the bytes.

    An ``http(s)`` answer other than 200 (206 for a ``limit``, a Range request), an empty body,
    an unreachable address or a timeout raise :class:`RMD17DataError` with a one-line reason.
    With ``limit``, at most that many bytes are asked for and copied.
    """
    headers = {"User-Agent": _USER_AGENT}
    if limit is not None:
        headers["Range"] = f"bytes=0-{limit - 1}"
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            status = getattr(response, "status", None)
            if urlsplit(response.geturl()).scheme in ("http", "https"):
                allowed = (200, 206) if limit is not None else (200,)
                if status not in allowed:
                    raise RMD17DataError(
                        f"could not download {url}: {_http_problem(status, response.headers)}"
                    )
            if limit is None:
                copied = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    destination.write(block)
                    copied += len(block)
            else:
                data = response.read(limit)
                destination.write(data)
                copied = len(data)
    except RMD17DataError:
        raise
    except urllib.error.HTTPError as error:
        problem = _http_problem(error.code, error.headers)
        raise RMD17DataError(f"could not download {url}: {problem}") from error
    except (OSError, ValueError) as error:  # URLError, timeouts and bad URLs
        reason = getattr(error, "reason", None) or error
        raise RMD17DataError(f"could not download {url}: {reason}") from error
    if copied == 0:
        raise RMD17DataError(f"could not download {url}: the answer was empty (0 bytes)")
    return copied


def check_url(url: str, size: int = 1024) -> str:
    """Ask ``url`` for its first ``size`` bytes; return a short description if they start an
    rMD17 archive (bzip2), else raise :class:`RMD17DataError` naming the problem.

    A network check for maintainers (``python -m acecourse.data check-url``), never run in CI.
    """
    with tempfile.TemporaryFile() as head:
        copied = _fetch(url, head, limit=size)
        head.seek(0)
        start = head.read(len(BZIP2_MAGIC))
    if start != BZIP2_MAGIC:
        raise RMD17DataError(f"{url} does not start a bzip2 archive (first bytes {start!r})")
    return f"bzip2 archive ({copied} bytes read)"


def download_split_files(target_dir: str | os.PathLike, base_url: str) -> Path:
    """Download the two split files from the folder at ``base_url`` into ``target_dir``.

    ``base_url`` is any URL that ``urllib`` opens (``https://``, ``file://``); the files are
    ``{base_url}/rmd17_ethanol_{train,test}_01.npz``.  Each file is written under a temporary
    name, checked with :func:`verify_file` and only then renamed, so an interrupted or altered
    download never leaves a file with the final name.  Files already present are kept (and
    checked).
    """
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    for name in SHA256:
        path = target / name
        if not path.is_file():
            partial = target / f".{name}.part"
            try:
                with open(partial, "wb") as out:
                    _fetch(f"{base_url.rstrip('/')}/{name}", out)
                verify_file(partial, expected_name=name)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
        verify_file(path)
    return target


def _archive_members(url: str) -> dict[str, bytes]:
    """Fetch the archive at ``url``; return the ethanol file and split indices it holds."""
    wanted = ("rmd17_ethanol.npz", "index_train_01.csv", "index_test_01.csv")
    with tempfile.TemporaryFile() as archive:
        _fetch(url, archive)
        archive.seek(0)
        start = archive.read(len(BZIP2_MAGIC))
        if start != BZIP2_MAGIC:
            raise RMD17DataError(
                f"{url} is not a readable rMD17 archive: not bzip2 (first bytes {start!r})"
            )
        archive.seek(0)
        members = {}
        try:
            with tarfile.open(fileobj=archive, mode="r:bz2") as tar:
                for member in tar:
                    name = Path(member.name).name
                    if name in wanted:
                        fobj = tar.extractfile(member)
                        if fobj is not None:
                            members[name] = fobj.read()
        except (tarfile.TarError, EOFError, OSError) as error:
            raise RMD17DataError(f"{url} is not a readable rMD17 archive: {error}") from error
    if len(members) != len(wanted):
        raise RMD17DataError(f"the archive at {url} lacks the ethanol data or its split indices")
    return members


def _write_splits(members: dict[str, bytes], target: Path) -> None:
    """Rebuild the two split files from the archive's members; each is written under a temporary
    name, checked against :data:`CONTENT_SHA256` and only then renamed."""
    with np.load(io.BytesIO(members["rmd17_ethanol.npz"])) as full:
        arrays = {key: full[key] for key in full.files}
    for split in ("train", "test"):
        index = np.loadtxt(io.BytesIO(members[f"index_{split}_01.csv"]), dtype=int).ravel()
        name = f"rmd17_ethanol_{split}_01.npz"
        partial = target / f".{name}.part.npz"
        try:
            np.savez(
                partial,
                nuclear_charges=arrays["nuclear_charges"],
                **{k: v[index] for k, v in arrays.items() if k != "nuclear_charges"},
            )
            verify_file(partial, expected_name=name)
            os.replace(partial, target / name)
        finally:
            partial.unlink(missing_ok=True)


def download_rmd17(target_dir: str | os.PathLike, url: str | Sequence[str] | None = None) -> Path:
    """Download the ethanol split-01 files into ``target_dir`` and check them.

    With ``url`` omitted: from the folder named by ``$ACECOURSE_RMD17_URL`` if that is set
    (:func:`download_split_files`), otherwise from the public rMD17 archive, trying each address
    of :data:`RMD17_ARCHIVE_URLS` until one gives a good archive.  An explicit ``url`` is the URL
    of the archive (``https://``, ``file://``), or a sequence of such URLs tried in order.

    From the archive (needs internet; about 1 GB, streamed to a temporary file) the split files
    are the frames of ``npz_data/rmd17_ethanol.npz`` listed in
    ``splits/index_{train,test}_01.csv``; the rebuilt arrays are checked against
    :data:`CONTENT_SHA256`.  If no address works, the one-line error names each address's
    problem and the two ways round it (a mirror in ``$ACECOURSE_RMD17_URL``, or the archive
    downloaded in a browser and given to :data:`ARCHIVE_COMMAND`).
    """
    if url is None:
        if os.environ.get(URL_ENV_VAR):
            return download_split_files(target_dir, os.environ[URL_ENV_VAR])
        urls: tuple[str, ...] = RMD17_ARCHIVE_URLS
    else:
        urls = (url,) if isinstance(url, str) else tuple(url)
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    failures = []
    for candidate in urls:
        try:
            _write_splits(_archive_members(candidate), target)
            return target
        except RMD17DataError as error:
            failures.append(str(error))
    what = failures[0] if len(failures) == 1 else f"no source worked ({'; '.join(failures)})"
    raise RMD17DataError(
        f"{what}. Set {URL_ENV_VAR} to a folder that serves rmd17_ethanol_{{train,test}}_01.npz, "
        f"or download rmd17.tar.bz2 in a browser from {RMD17_RECORD} and run `{ARCHIVE_COMMAND}`"
    )


def load_rmd17_ethanol(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    indices: np.ndarray | list[int] | slice | None = None,
    download: bool = False,
) -> list[Atoms]:
    """Load rMD17 ethanol split 01 as a list of ASE ``Atoms``.

    Parameters
    ----------
    split
        ``"train"`` (1,000 frames) or ``"test"`` (1,000 frames, disjoint from train).
    data_dir
        Folder holding ``rmd17_ethanol_{train,test}_01.npz``; see the module docstring for the
        search order when omitted.
    indices
        Optional subset of frames (indices into the split, or a slice).
    download
        Fetch missing files from the public source (internet needed).

    Returns
    -------
    list of Atoms
        Positions in Å; ``info["REF_energy"]`` total energy in eV; ``arrays["REF_forces"]`` in
        eV/Å; ``info["rmd17_index"]`` the frame's index in the split; ``info["config_type"]``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    name = f"rmd17_ethanol_{split}_01.npz"
    directory = resolve_data_dir(data_dir)
    path = directory / name
    if download and not path.is_file():
        if data_dir is None and not os.environ.get(ENV_VAR):
            directory = Path.home() / ".cache" / "acecourse" / "rmd17"  # never the read-only mirror
            path = directory / name
        if not path.is_file():
            download_rmd17(directory)
    verify_file(path)
    with np.load(path) as npz:
        numbers = npz["nuclear_charges"].astype(int)
        coords = npz["coords"]
        energies = npz["energies"] * KCAL_PER_MOL
        forces = npz["forces"] * KCAL_PER_MOL
    frame_ids = np.arange(len(coords))
    if indices is not None:
        frame_ids = np.atleast_1d(frame_ids[indices])
    frames = []
    for k in frame_ids:
        atoms = Atoms(numbers=numbers, positions=coords[k])
        atoms.info[ENERGY_KEY] = float(energies[k])
        atoms.arrays[FORCES_KEY] = np.array(forces[k])
        atoms.info["rmd17_index"] = int(k)
        atoms.info["config_type"] = f"rmd17_{split}"
        frames.append(atoms)
    return frames


def train_valid_split(
    n_frames: int = 1000, n_valid: int = 50, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Random split of the 1,000 training frames into train (950) and validation (50) indices."""
    if not 0 < n_valid < n_frames:
        raise ValueError(f"n_valid must be between 1 and {n_frames - 1}, got {n_valid}")
    perm = np.random.default_rng(seed).permutation(n_frames)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
