"""Importing the course's MACE code prints nothing and warns nothing (issue 13 item 13).

Pages show what a cell prints: mace-torch's import-time cuEquivariance notice, or e3nn's warning
about a forced ``weights_only=False`` (with the machine's path to e3nn), would appear on every
page that imports ``acecourse.mace`` or ``acecourse.training``.  Checked with the environment of
the kernels that execute the chapters (``book/_ext/kernel_env.py``).
"""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
from kernel_env import kernel_process_environment  # the website kernels' settings

KERNEL_ENV = kernel_process_environment()
MODULES = ["acecourse.mace", "acecourse.training", "acecourse.training.md"]


def _import_all() -> subprocess.CompletedProcess:
    """One process imports each module in turn; a marker after each import shows which one
    printed (each imports ``acecourse`` first, so the order changes no filter)."""
    code = "".join(f"import {m}\nprint('@@ {m}', flush=True)\n" for m in MODULES)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=KERNEL_ENV
    )


def _import_mace() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import mace.tools.cg"], capture_output=True, text=True, check=True
    )


@pytest.mark.background(job=_import_all)
def test_import_is_silent(background) -> None:
    result = background
    assert result.stdout == "".join(f"@@ {m}\n" for m in MODULES), result.stdout
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.background(job=_import_mace)
def test_mace_notice_is_still_printed_by_mace_itself(background) -> None:
    """The check above can fail: mace-torch imported on its own does print the notice."""
    assert "cuequivariance" in background.stdout
