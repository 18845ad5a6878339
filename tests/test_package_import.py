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
from conftest import BACKGROUND_ENV

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from kernel_env import kernel_process_environment  # the website kernels' settings

KERNEL_ENV = kernel_process_environment()
MODULES = ["acecourse.mace", "acecourse.training", "acecourse.training.md"]


def _import_each() -> dict[str, subprocess.CompletedProcess]:
    """Each module in an interpreter of its own: a subpackage that hides mace's notice itself
    would hide it for the next one in the same interpreter."""
    results = {}
    for module in MODULES:
        results[module] = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True, text=True, check=True, env=KERNEL_ENV, cwd=ROOT,
        )  # fmt: skip
    return results


def _import_mace() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import mace.tools.cg"],
        capture_output=True, text=True, check=True, env=BACKGROUND_ENV, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.background(job=_import_each)
@pytest.mark.parametrize("module", MODULES)
def test_import_is_silent(background, module: str) -> None:
    result = background[module]
    assert result.stdout == "", result.stdout
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.background(job=_import_mace)
def test_mace_notice_is_still_printed_by_mace_itself(background) -> None:
    """The check above can fail: mace-torch imported on its own does print the notice."""
    assert "cuequivariance" in background.stdout
