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


@pytest.mark.parametrize(
    "module", ["acecourse.mace", "acecourse.training", "acecourse.training.md"]
)
def test_import_is_silent(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=KERNEL_ENV,
    )
    assert result.stdout == "", result.stdout
    assert "Warning" not in result.stderr, result.stderr


def test_mace_notice_is_still_printed_by_mace_itself() -> None:
    """The check above can fail: mace-torch imported on its own does print the notice."""
    result = subprocess.run(
        [sys.executable, "-c", "import mace.tools.cg"], capture_output=True, text=True, check=True
    )
    assert "cuequivariance" in result.stdout
