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
