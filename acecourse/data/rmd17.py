"""rMD17: checked loading into ASE ``Atoms``; ethanol split 01 ships with the package.

The revised MD17 data set (Christensen & von Lilienfeld, 2020) gives PBE/def2-SVP energies and
forces for ten molecules, with five train/test splits of 1,000 + 1,000 frames each.  Ethanol
split 01, the course's data, ships in ``acecourse/data/rmd17/`` (CC0 1.0; licence and citation in
the README there), so :func:`load_rmd17_ethanol` needs no download.  Every file is checked
against the SHA-256 of ``rmd17/registry.txt`` on each load.

Other molecules and splits are downloaded on first use with pooch into ``~/.cache/acecourse``
(pooch's cache folder): the per-split file of github.com/andersx/rmd17-npz (0.7 to 1.5 MB) first;
if that fails, the split is rebuilt from the 1 GB figshare archive of rMD17 (kept in the cache
for the next split), and checked against the content hash of ``registry.txt``.

Reference labels are stored in ``atoms.info["REF_energy"]`` (eV, total energy of the molecule)
and ``atoms.arrays["REF_forces"]`` (eV/Å), names that cannot collide with the ``energy`` and
``forces`` keys of an ASE calculator (mace-torch's ``--energy_key``/``--forces_key`` accept them).

A folder named by the ``data_dir`` argument or by the environment variable
``ACECOURSE_RMD17_DIR`` replaces the shipped folder and the cache: a setting that names a folder
without the files fails instead of falling back.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pooch
from ase import Atoms, units

ENV_VAR = "ACECOURSE_RMD17_DIR"
"""Environment variable naming a folder that holds the split files (replaces the defaults)."""

ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"
KCAL_PER_MOL = units.kcal / units.mol  # eV per (kcal/mol)

PACKAGE_DIR = Path(__file__).with_name("rmd17")
"""The shipped files: ethanol split 01, its licence and the registry of hashes."""

SPLIT_FILES_URL = (
    "https://raw.githubusercontent.com/andersx/rmd17-npz/"
    "4f6bb0a186822c90d47cd98b7a27991fe0b3173b/rmd17-npz/"
)
"""The per-split files (CC0 1.0, by the data set's author), at a fixed commit."""

ARCHIVE_URLS = (
    "https://api.figshare.com/v2/file/download/23950376",
    "https://ndownloader.figshare.com/files/23950376",
)
"""The rMD17 archive (figshare article 12672038, 1 GB tar.bz2), tried in this order.  The API
address avoids the bot challenge (an empty ``HTTP 202``) that ``figshare.com/ndownloader``
answers scripts with."""

RMD17_RECORD = "https://doi.org/10.6084/m9.figshare.12672038"


class RMD17DataError(RuntimeError):
    """The rMD17 files are missing, truncated or altered, or could not be downloaded."""


def _read_registry() -> dict[str, tuple[str, str]]:
    lines = (PACKAGE_DIR / "registry.txt").read_text().splitlines()
    rows = [line.split() for line in lines if line and not line.startswith("#")]
    return {name: (file_hash, content) for name, file_hash, content in rows}


REGISTRY = _read_registry()
"""File name -> (SHA-256 of the file, SHA-256 of its arrays), for all 100 per-split files."""

MOLECULES = tuple(sorted({name.split("_")[1] for name in REGISTRY}))
"""The ten molecules of rMD17 (aspirin ... uracil)."""


def split_file_name(molecule: str = "ethanol", split: str = "train", split_index: int = 1) -> str:
    """``rmd17_<molecule>_<train|test>_<01..05>.npz``; raises ``ValueError`` for other values."""
    if molecule not in MOLECULES:
        raise ValueError(f"molecule must be one of {', '.join(MOLECULES)}; got {molecule!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if split_index not in range(1, 6):
        raise ValueError(f"split_index must be 1 to 5, got {split_index!r}")
    return f"rmd17_{molecule}_{split}_{split_index:02d}.npz"


def cache_dir() -> Path:
    """Where downloaded files go: pooch's cache folder for the course, ``.../rmd17``."""
    return Path(pooch.os_cache("acecourse")) / "rmd17"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds ethanol split 01: ``data_dir``, else ``$ACECOURSE_RMD17_DIR``, else
    the shipped folder :data:`PACKAGE_DIR`."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(ENV_VAR) or PACKAGE_DIR)


def content_sha256(path: Path) -> str:
    """SHA-256 of the arrays (charges, coordinates, energies, forces) of a split file."""
    digest = hashlib.sha256()
    with np.load(path) as npz:
        for key in ("nuclear_charges", "coords", "energies", "forces"):
            digest.update(np.ascontiguousarray(npz[key]).tobytes())
    return digest.hexdigest()


def verify_file(path: Path, name: str | None = None) -> None:
    """Raise :class:`RMD17DataError` unless ``path`` holds the published split file ``name``
    (default: the file's own name): the same bytes, or, for a split rebuilt from the archive,
    the same arrays."""
    name = name or path.name
    if not path.is_file():
        raise RMD17DataError(
            f"{path} not found: put the split files there (python -m acecourse.data download "
            f"--dir DIR) or leave data_dir and {ENV_VAR} unset to use the shipped files"
        )
    file_hash, content = REGISTRY[name]
    if pooch.file_hash(str(path)) == file_hash:
        return
    try:
        same_arrays = content_sha256(path) == content
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # not a readable npz
        same_arrays = False
    if not same_arrays:
        raise RMD17DataError(f"{path} is truncated or altered (SHA-256 differs): delete it")


def fetch_rmd17(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Put the split file ``name`` into ``folder`` (default :func:`cache_dir`), checked.

    A shipped file is copied; any other is downloaded from :data:`SPLIT_FILES_URL`, or, if that
    fails, rebuilt from the rMD17 archive (about 1 GB, once, with a progress bar).
    """
    folder = Path(folder) if folder is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if (PACKAGE_DIR / name).is_file():
        shutil.copyfile(PACKAGE_DIR / name, path)
        return path
    try:
        pooch.retrieve(
            SPLIT_FILES_URL + name, f"sha256:{REGISTRY[name][0]}", fname=name, path=folder
        )
        return path
    except (OSError, ValueError) as error:  # requests' errors are OSErrors; a bad hash is not
        print(f"{name} could not be downloaded ({error}); rebuilding it", file=sys.stderr)
    _rebuild_from_archive(name, _archive(), path)
    return path


def _archive() -> Path:
    """The rMD17 archive in the cache, downloaded from the first address that serves it."""
    if not (cache_dir() / "rmd17.tar.bz2").is_file():
        print("downloading the rMD17 archive: about 1 GB, once", file=sys.stderr)
    failures = []
    for url in ARCHIVE_URLS:
        try:
            archive = Path(
                pooch.retrieve(url, None, fname="rmd17.tar.bz2", path=cache_dir(), progressbar=True)
            )
        except (OSError, ValueError) as error:
            failures.append(f"{url}: {error}")
            continue
        with open(archive, "rb") as head:
            if head.read(3) == b"BZh":
                return archive
        archive.unlink()  # e.g. a bot challenge's empty answer: not the archive
        failures.append(f"{url}: not a bzip2 archive")
    raise RMD17DataError(
        f"could not download rMD17 ({'; '.join(failures)}): download rmd17.tar.bz2 from "
        f"{RMD17_RECORD} into {cache_dir()} and try again"
    )


def _rebuild_from_archive(name: str, archive: Path, path: Path) -> None:
    """Write split ``name`` to ``path``: the frames of ``npz_data/rmd17_<molecule>.npz`` listed in
    ``splits/index_<split>_<nn>.csv``, checked against the registry's content hash."""
    _, molecule, split, index = Path(name).stem.split("_")
    wanted = {f"rmd17_{molecule}.npz", f"index_{split}_{index}.csv"}
    with tarfile.open(archive, "r:bz2") as tar:
        members = {
            Path(m.name).name: io.BytesIO(tar.extractfile(m).read())
            for m in tar
            if Path(m.name).name in wanted
        }
        if set(members) != wanted:
            raise RMD17DataError(f"{archive} lacks {sorted(wanted - set(members))}")
        with np.load(members[f"rmd17_{molecule}.npz"]) as full:
            arrays = {key: full[key] for key in full.files}
        frames = np.loadtxt(members[f"index_{split}_{index}.csv"], dtype=int).ravel()
    partial = path.with_suffix(".part.npz")
    try:
        np.savez(
            partial,
            **{k: v if k == "nuclear_charges" else v[frames] for k, v in arrays.items()},
        )
        verify_file(partial, name)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_rmd17(
    molecule: str = "ethanol",
    split: str = "train",
    split_index: int = 1,
    data_dir: str | os.PathLike | None = None,
    indices: np.ndarray | list[int] | slice | int | None = None,
    download: bool = True,
) -> list[Atoms]:
    """Load an rMD17 split as a list of ASE ``Atoms``, from a checked file (:func:`verify_file`).

    The file comes from ``data_dir`` or ``$ACECOURSE_RMD17_DIR`` when set, else it is shipped,
    else in the cache, else it is downloaded into the cache (with ``download``).

    Parameters
    ----------
    molecule
        One of :data:`MOLECULES`.
    split
        ``"train"`` (1,000 frames) or ``"test"`` (1,000 frames, disjoint from train).
    split_index
        Which of the five published splits (1 to 5); split 1 of ethanol ships with the course.
    data_dir
        Folder holding the split file (replaces the shipped folder and the cache).
    indices
        Optional subset of frames (indices into the split, or a slice).
    download
        Fetch a file that is neither shipped nor cached (internet needed).

    Returns
    -------
    list of Atoms
        Positions in Å; ``info["REF_energy"]`` total energy in eV; ``arrays["REF_forces"]`` in
        eV/Å; ``info["rmd17_index"]`` the frame's index in the split; ``info["config_type"]``.
    """
    name = split_file_name(molecule, split, split_index)
    if data_dir is not None or os.environ.get(ENV_VAR):
        path = resolve_data_dir(data_dir) / name
    elif (PACKAGE_DIR / name).is_file():
        path = PACKAGE_DIR / name
    else:
        path = cache_dir() / name
        if not path.is_file():
            if not download:
                raise RMD17DataError(f"{name} is not downloaded yet: call with download=True")
            fetch_rmd17(name)
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


def load_rmd17_ethanol(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    indices: np.ndarray | list[int] | slice | int | None = None,
    download: bool = True,
    split_index: int = 1,
) -> list[Atoms]:
    """Ethanol frames of :func:`load_rmd17` (split 01, the course's data, by default)."""
    return load_rmd17("ethanol", split, split_index, data_dir, indices, download)


def train_valid_split(
    n_frames: int = 1000, n_valid: int = 50, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Random split of the 1,000 training frames into train (950) and validation (50) indices."""
    if not 0 < n_valid < n_frames:
        raise ValueError(f"n_valid must be between 1 and {n_frames - 1}, got {n_valid}")
    perm = np.random.default_rng(seed).permutation(n_frames)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])
