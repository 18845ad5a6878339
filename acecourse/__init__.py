"""Shared code of the Multi-ACE Learning Roadmap course.

Subpackages follow mace-torch's split: ``maths`` (rotations, spherical harmonics, Wigner D,
Clebsch-Gordan), ``ace`` (the atomic cluster expansion), ``nn`` (e3nn networks), ``mace`` (MACE
rebuilt), ``data`` (datasets), ``training`` (the MACE training command), ``plotting`` (the
course's figure style), ``equivariance`` (the one equivariance checker) and ``design_space``
(the sweep of chapter 04/03); :data:`ARTIFACTS` is the folder of the course's recorded results.  Notebooks import from
here; nothing is copied.

Importing the package also makes e3nn 0.4.4 importable under torch >= 2.6: e3nn loads its
constants with ``torch.load``, whose default ``weights_only=True`` refuses the ``slice`` objects
in them unless ``slice`` is allow-listed.  It then imports e3nn at once, so that those constants
are read under ``weights_only=True`` before anything imports mace-torch: mace-torch's import sets
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, and an e3nn imported after it warns (with the machine's
path to e3nn) that ``weights_only=False`` was forced.

Before any of that, it filters the dependencies' warnings that a learner cannot act on
(:mod:`acecourse._warnings`: TorchScript's deprecation and annotation warnings, tqdm's fallback
notice), narrowly by category and message, so that a chapter downloaded and run in a fresh
environment is as clean as the website.
"""

from pathlib import Path as _Path

from acecourse import _warnings

_warnings.install()

import torch as _torch  # after the warning filters

_torch.serialization.add_safe_globals([slice])

import e3nn.o3 as _e3nn_o3  # noqa: F401  (after the allow-list, before any mace import)

__version__ = "0.1.0"

_HERE = _Path(__file__).resolve().parent
#: The course's recorded results (the repository's ``artifacts/``): installed with the package
#: (``acecourse/artifacts`` links to that folder in a clone), so that a chapter finds them
#: wherever it runs.
ARTIFACTS = next(
    (p for p in (_HERE / "artifacts", _HERE.parent / "artifacts") if p.is_dir()),
    _HERE / "artifacts",
)
