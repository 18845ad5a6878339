"""A chapter run outside the website is as clean as the site (issue 20 item 9).

``import acecourse`` filters the dependencies' warnings that a learner cannot act on
(:mod:`acecourse._warnings`).  Checked in a plain Python process, as a downloaded chapter runs in
Colab or a learner's kernel: no ``PYTHONWARNINGS``, no kernel settings of the book build, every
warning shown once per place (``-W default``, so that deprecations are not hidden either).
"""

import subprocess
import sys
import warnings

import pytest
from conftest import BACKGROUND_ENV, ROOT

TRAINING_PATH = """
import warnings
import numpy as np
import acecourse.training
from acecourse.training import make_config
from acecourse.training.model import build_model
from e3nn import o3
from tqdm import TqdmWarning

config = make_config("ci")
build_model(config, np.zeros(10), 1.0, 5.0)
o3.FullyConnectedTensorProduct("2x1o", "2x1o", "1x0e + 1x1e")
# tqdm.notebook's warning without ipywidgets, raised as tqdm raises it
warnings.warn("IProgress not found. Please update jupyter and ipywidgets.", TqdmWarning)
warnings.warn("a warning of ours", UserWarning)
"""

NOISE = (
    "torch.jit.script",
    "TorchScript type system",
    "IProgress not found",
    "weights_only",
    "torch.cuda.amp",
)


def _plain_run(code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in BACKGROUND_ENV.items() if k not in ("PYTHONWARNINGS",)}
    env = {k: v for k, v in env.items() if not k.startswith("ACECOURSE_")}
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )


def _filtered() -> subprocess.CompletedProcess:
    return _plain_run(TRAINING_PATH)


def _unfiltered() -> subprocess.CompletedProcess:
    return _plain_run(
        "import warnings, acecourse\n"
        "warnings.resetwarnings(); warnings.simplefilter('default')\n" + TRAINING_PATH
    )


@pytest.mark.background(job=_filtered)
def test_training_path_warns_nothing_a_learner_cannot_act_on(background) -> None:
    result = background
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if "Warning:" in line]
    noise = [line for line in lines if any(n in line for n in NOISE)]
    assert not noise, "\n".join(noise)
    # our own warning still shows: the filters are narrow (message and category)
    assert any("UserWarning: a warning of ours" in line for line in lines), result.stderr
    others = [line for line in lines if "a warning of ours" not in line]
    assert not [line for line in others if "FutureWarning" in line or "UserWarning" in line], (
        "\n".join(others)
    )


def test_filters_are_narrow() -> None:
    """The same messages in another category, or another message in the same category, show."""
    from acecourse import _warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        _warnings.install()
        warnings.warn("`torch.jit.script` is deprecated. Use torch.compile.", FutureWarning)
        warnings.warn("`torch.jit.script` is deprecated. Use torch.compile.", RuntimeWarning)
        warnings.warn("The TorchScript type system doesn't support instance-level annotations")
        warnings.warn("The TorchScript type system is fine", UserWarning)
        warnings.warn("IProgress not found", UserWarning)
    shown = [(type(w.message), str(w.message)) for w in caught]
    assert shown == [
        (RuntimeWarning, "`torch.jit.script` is deprecated. Use torch.compile."),
        (UserWarning, "The TorchScript type system is fine"),
        (UserWarning, "IProgress not found"),
    ], shown


@pytest.mark.background(job=_unfiltered)
def test_the_noise_exists_without_the_filters(background) -> None:
    """The check above can fail: without the course's filters, building the model warns."""
    result = background
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TorchScript type system" in result.stderr
    assert "IProgress not found" in result.stderr


WEBSITE_KERNEL_CODE = """
import warnings
import acecourse.mace  # imports mace-torch (and e3nn before it)
from e3nn import o3
o3.FullyConnectedTensorProduct('2x1o', '2x1o', '1x0e + 1x1e')
warnings.warn('a warning of ours', UserWarning)
"""


def test_kernel_environment_keeps_existing_filters_and_puts_ours_last() -> None:
    from kernel_env import WARNING_FILTERS, kernel_environment

    env = kernel_environment({"PYTHONWARNINGS": "error::ResourceWarning"})
    assert env["ACECOURSE_BOOK_BUILD"] == "1"
    assert env["PYTHONWARNINGS"].split(",") == ["error::ResourceWarning", *WARNING_FILTERS]
    for entry in WARNING_FILTERS:  # Python's -W syntax: action:message:category, no separators
        assert "," not in entry and len(entry.split(":")) <= 5, entry


def _website_kernel() -> subprocess.CompletedProcess:
    from kernel_env import kernel_process_environment

    env = kernel_process_environment(BACKGROUND_ENV)  # as the book build's kernels get it
    return subprocess.run([sys.executable, "-c", WEBSITE_KERNEL_CODE], capture_output=True,
                          text=True, env=env, check=False, cwd=ROOT)  # fmt: skip


@pytest.mark.background(job=_website_kernel)
def test_website_kernel_shows_our_warnings_and_no_library_noise(background) -> None:
    """In a website kernel's environment, building e3nn and mace-torch modules warns about
    nothing, while a warning of our own code still shows."""
    assert background.returncode == 0, background.stderr
    lines = [line for line in background.stderr.splitlines() if "Warning:" in line]
    assert len(lines) == 1 and "UserWarning: a warning of ours" in lines[0], background.stderr
    # e3nn's constants are loaded before mace-torch sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in background.stderr
