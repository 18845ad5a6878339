"""Carrying a checkpoint between device sessions: compress, split into parts, verify, join.

A run of the ``full`` profile needs more GPU time than one device session has, so its checkpoint
must leave the device machine and come back to a fresh one.  Files travel under limits: a command
returns at most 8 files of 16 MiB (64 MiB in all), and a call carries at most 64 MiB with the
repository included.  The checkpoint of the 256-channel model (weights, their moving average and
the three AMSGrad moments: 76.8 MB, 63.3 MB compressed) fits neither whole, so
:func:`pack_checkpoint` writes it as zlib-compressed parts of at most ``part_mib`` MiB with a
manifest of SHA-256 sums, and :func:`unpack_checkpoint` checks every part
and the joined file before it writes ``checkpoint.pt`` back, bit for bit.  The resumed run is
then the same run (``tests/test_training.py`` checks that resuming reproduces an uninterrupted
run).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from pathlib import Path

from acecourse.training.trainer import CHECKPOINT_NAME, TrainingError

MANIFEST_NAME = "checkpoint.manifest.json"


class TransportError(TrainingError):
    """A packed checkpoint is missing, incomplete or corrupt."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack_checkpoint(
    run_dir: str | os.PathLike, dest: str | os.PathLike, part_mib: float = 15.0
) -> dict:
    """Write ``run_dir/checkpoint.pt`` as compressed parts plus a manifest into ``dest``."""
    if not part_mib > 0:
        raise TransportError(f"part size must be positive, got {part_mib} MiB")
    src = Path(run_dir) / CHECKPOINT_NAME
    if not src.is_file():
        raise TransportError(f"{src}: no checkpoint to pack (train first)")
    raw = src.read_bytes()
    packed = zlib.compress(raw, 6)
    size = max(1, int(part_mib * 2**20))
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("checkpoint.part*"):
        old.unlink()
    parts = []
    for index, start in enumerate(range(0, len(packed), size)):
        chunk = packed[start : start + size]
        name = f"checkpoint.part{index:02d}"
        (out / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": _sha256(chunk)})
    manifest = {
        "checkpoint_bytes": len(raw),
        "checkpoint_sha256": _sha256(raw),
        "compressed_bytes": len(packed),
        "parts": parts,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def unpack_checkpoint(src: str | os.PathLike, run_dir: str | os.PathLike) -> dict:
    """Check and join the parts in ``src`` (or its subfolders) into ``run_dir/checkpoint.pt``."""
    src = Path(src)
    # the parts may sit in subfolders of src: a call that carries files to a device machine
    # has room for only some of them, so they arrive in several folders
    found = {p.name: p for p in sorted(src.rglob("checkpoint.*")) if p.is_file()}
    if MANIFEST_NAME not in found:
        raise TransportError(f"{src / MANIFEST_NAME}: no manifest; copy the packed folder whole")
    manifest = json.loads(found[MANIFEST_NAME].read_text())
    chunks = []
    for part in manifest["parts"]:
        path = found.get(part["name"], src / part["name"])
        if not path.is_file():
            raise TransportError(f"{path}: part missing; fetch every part the manifest lists")
        chunk = path.read_bytes()
        if len(chunk) != part["bytes"] or _sha256(chunk) != part["sha256"]:
            raise TransportError(f"{path}: truncated or corrupt (SHA-256 differs); fetch it again")
        chunks.append(chunk)
    try:
        raw = zlib.decompress(b"".join(chunks))
    except zlib.error as err:
        raise TransportError(f"{src}: parts do not decompress ({err}); pack again") from err
    if _sha256(raw) != manifest["checkpoint_sha256"]:
        raise TransportError(f"{src}: joined checkpoint differs from the packed one; pack again")
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (CHECKPOINT_NAME + ".tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, out / CHECKPOINT_NAME)
    return manifest


# --- what a device call returns ---------------------------------------------------------------

RETURN_LIMITS = {"files": 8, "file_bytes": 16 * 2**20, "total_bytes": 64 * 2**20, "depth": 2}
"""What a device call returns from its output folder: at most 8 files, each at most 16 MiB and
64 MiB together, no more than 2 folders down (``OUT/a/b/file`` comes back, ``OUT/a/b/c/file``
does not), every file and folder named in letters, digits, ``.``, ``_`` and ``-`` alone; links
and other non-plain files do not come back (the limits of the GPU service that made the
course's runs: ``scripts/device/README.md``)."""

_RETURNABLE_NAME = re.compile(r"[A-Za-z0-9._-]+")


def returned_files(out: str | os.PathLike) -> tuple[list[tuple[str, int]], list[str]]:
    """The files a device call would return from ``out``, and what would not come back.

    Returns ``(files, problems)``: ``files`` as (path relative to ``out``, bytes), sorted;
    ``problems`` as one sentence each, empty when everything under ``out`` would come back.
    """
    out = Path(out)
    files, problems = [], []
    for folder, dirs, names in os.walk(out):
        here = Path(folder)
        for name in sorted(dirs + names):
            path = here / name
            rel = path.relative_to(out).as_posix()
            if not _RETURNABLE_NAME.fullmatch(name):
                problems.append(f"{rel}: a name with other characters than A-Z a-z 0-9 . _ -")
            if path.is_symlink():
                problems.append(f"{rel}: a link")
            elif path.is_file():
                depth = len(path.relative_to(out).parts) - 1
                if depth > RETURN_LIMITS["depth"]:
                    problems.append(
                        f"{rel}: {depth} folders down (at most {RETURN_LIMITS['depth']})"
                    )
                size = path.stat().st_size
                if size > RETURN_LIMITS["file_bytes"]:
                    problems.append(f"{rel}: {size / 2**20:.1f} MiB (at most 16 MiB a file)")
                files.append((rel, size))
            elif not path.is_dir():
                problems.append(f"{rel}: not a plain file")
    files.sort()
    problems.sort()
    if len(files) > RETURN_LIMITS["files"]:
        problems.append(f"{len(files)} files (at most {RETURN_LIMITS['files']})")
    total = sum(size for _, size in files)
    if total > RETURN_LIMITS["total_bytes"]:
        problems.append(f"{total / 2**20:.1f} MiB in all (at most 64 MiB)")
    return files, problems


def check_returned(out: str | os.PathLike) -> list[tuple[str, int]]:
    """The files a device call returns from ``out``; :class:`TransportError` (one line) when any
    of what is there would not come back."""
    files, problems = returned_files(out)
    if problems:
        raise TransportError(f"{out}: would not all come back: {'; '.join(problems)}")
    return files
