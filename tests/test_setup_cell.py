"""Tests of the chapters' setup cell (``scripts/setup_cell.py``).

* Every notebook of the table of contents carries the current cell (what ``--check`` checks).
* The tool inserts, replaces and checks the cell, and takes the repository from ``_config.yml``.
* The cell itself, run as a learner in Colab would run it: in a fresh Python environment without
  the course it installs the package with pip from a git repository (a local copy of this
  working tree, ``file://``) and fetches rMD17 through the loader's ``download=True`` path from a
  ``file://`` folder serving copies of the split files.  The fresh environment is a venv whose
  ``sys.path`` sees the course's ``.venv`` site-packages through a ``.pth`` file (so pip finds
  every dependency installed and downloads nothing: ``PIP_NO_INDEX``) but not its editable
  ``acecourse``.
* Where the course is installed the cell starts no process and opens no URL, and in CI, in the
  book build or inside a clone it installs nothing and fails with an instruction instead.

Run time: about 15 s (one pip install from a local git repository, a few Python start-ups).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, TOC_PATH, toc_notebooks

sys.path.insert(0, str(ROOT / "scripts"))
import setup_cell

from acecourse.data import rmd17

NOTEBOOKS = [n for n in toc_notebooks() if (ROOT / n).is_file()]
DATA_DIR = rmd17.resolve_data_dir()
HAVE_DATA = all((DATA_DIR / name).is_file() for name in rmd17.SHA256)
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=f"rMD17 split 01 not found in {DATA_DIR}")

#: Prepended to the cell: any process start or URL opened afterwards aborts the run.
FORBID_SIDE_EFFECTS = """\
import sys
def _forbid(event, args):
    if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "urllib.Request",
                 "socket.connect"):
        raise RuntimeError(f"FORBIDDEN {event}")
sys.addaudithook(_forbid)
"""


# --------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NOTEBOOKS)
def test_toc_notebook_carries_the_current_setup_cell(notebook: str) -> None:
    nb = setup_cell.read(ROOT / notebook)
    problems = setup_cell.problems(nb)
    assert not problems, f"{notebook}: {problems} (run: python scripts/setup_cell.py --write)"


def test_toc_lists_notebooks() -> None:
    assert NOTEBOOKS, f"{TOC_PATH} lists no existing notebook"


# --------------------------------------------------------------------------- the tool
def _notebook(*cells: tuple[str, str]) -> dict:
    return {
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": text}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for i, (kind, text) in enumerate(cells)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_write_inserts_before_the_first_code_cell_and_check_passes() -> None:
    nb = _notebook(("markdown", "# Title"), ("code", "import numpy"), ("code", "x = 1"))
    assert setup_cell.problems(nb) == ["no setup cell (tag acecourse-setup)"]
    setup_cell.with_setup_cell(nb)
    kinds = [(c["cell_type"], c["id"]) for c in nb["cells"]]
    assert kinds == [
        ("markdown", "c0"),
        ("code", "acecourse-setup"),
        ("code", "c1"),
        ("code", "c2"),
    ]
    cell = nb["cells"][1]
    assert cell["metadata"]["tags"] == ["remove-cell", "acecourse-setup"]
    assert "".join(cell["source"]) == setup_cell.cell_source(rmd17=False)
    assert setup_cell.problems(nb) == []
    before = json.dumps(nb, sort_keys=True)
    setup_cell.with_setup_cell(nb)  # idempotent
    assert json.dumps(nb, sort_keys=True) == before


def test_check_finds_every_kind_of_stale_cell() -> None:
    def fresh() -> dict:
        return setup_cell.with_setup_cell(_notebook(("markdown", "# T"), ("code", "x = 1")))

    nb = fresh()
    nb["cells"][1]["source"][0] = "# edited by hand\n"
    assert any("differs" in p for p in setup_cell.problems(nb))
    nb = fresh()
    nb["cells"][1]["metadata"]["tags"].remove("remove-cell")
    assert any("remove-cell" in p for p in setup_cell.problems(nb))
    nb = fresh()
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    assert any("outputs" in p for p in setup_cell.problems(nb))
    nb = fresh()
    nb["cells"].append(nb["cells"].pop(1))  # moved after the chapter's code
    assert any("not the first code cell" in p for p in setup_cell.problems(nb))
    setup_cell.with_setup_cell(nb)  # --write moves it back, keeping its id
    assert [c["id"] for c in nb["cells"]] == ["c0", "acecourse-setup", "c1"]
    assert setup_cell.problems(nb) == []


def test_chapters_that_use_rmd17_fetch_it() -> None:
    plain = setup_cell.with_setup_cell(_notebook(("code", "import numpy")))
    data = setup_cell.with_setup_cell(
        _notebook(("code", "from acecourse.data import load_rmd17_ethanol"))
    )
    trainer = setup_cell.with_setup_cell(_notebook(("code", "import acecourse.nn.trainer")))
    assert "download=True" not in "".join(plain["cells"][0]["source"])
    for nb in (data, trainer):
        assert "download=True" in "".join(nb["cells"][0]["source"])
    # the setup cell's own mention of the loader does not count
    assert not setup_cell.uses_rmd17(plain)


def test_repository_and_ref_come_from_the_config(tmp_path) -> None:
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/a-fork/course/\n  branch: v1.2\n")
    repo, ref = setup_cell.repository(config)
    assert (repo, ref) == ("https://github.com/a-fork/course", "v1.2")
    text = setup_cell.cell_source(True, repo, ref)
    assert '"https://github.com/a-fork/course"' in text and '"v1.2"' in text
    compile(text, "<setup cell>", "exec")  # valid Python
    config.write_text("repository:\n  url: https://github.com/a-fork/course\n")
    with pytest.raises(ValueError, match="repository.branch"):
        setup_cell.repository(config)


def test_command_line_write_then_check(tmp_path, capsys) -> None:
    (tmp_path / "_config.yml").write_text(
        "repository:\n  url: https://github.com/org/repo\n  branch: main\n"
    )
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n      - file: ch/one\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "ch").mkdir()
    setup_cell.write(tmp_path / "ch" / "one.ipynb", _notebook(("markdown", "# One"), ("code", "1")))
    argv = ["--toc", str(tmp_path / "_toc.yml"), "--config", str(tmp_path / "_config.yml")]
    assert setup_cell.main(["--check", *argv]) == 1
    assert "ch/one.ipynb: no setup cell" in capsys.readouterr().err
    assert setup_cell.main(["--write", *argv]) == 0
    assert setup_cell.main(["--check", *argv]) == 0
    # a fork changes the repository: every cell is stale until --write
    (tmp_path / "_config.yml").write_text(
        "repository:\n  url: https://github.com/fork/repo\n  branch: main\n"
    )
    assert setup_cell.main(["--check", *argv]) == 1
    assert "differs" in capsys.readouterr().err


# --------------------------------------------------------------------------- the cell, run
def _fresh_environment(where: Path) -> Path:
    """A venv without the course; the course .venv's packages are visible through a .pth file."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, capture_output=True
    )
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # a path line of a .pth file is added to sys.path; the .pth files found there (the editable
    # acecourse's among them) are not processed
    (Path(purelib) / "course-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _run(python: Path, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACECOURSE_", "PIP_", "PYTHON", "VIRTUAL_ENV"))
        and k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"  # set in this process by mace-torch's import
    }
    environment.update(env)
    return subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> dict:
    """A git repository with this working tree's package, a served rMD17 folder, a fresh venv."""
    base = tmp_path_factory.mktemp("setup_cell")
    source = base / "repo"
    shutil.copytree(
        ROOT / "acecourse", source / "acecourse", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", source)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q", "-b", "course-ref", str(source)], check=True)
    subprocess.run([*git, "-C", str(source), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(source), "commit", "-q", "-m", "course"], check=True)
    served = base / "served"
    served.mkdir()
    if HAVE_DATA:
        for name in rmd17.SHA256:
            shutil.copy(DATA_DIR / name, served / name)
    (base / "home").mkdir()
    (base / "work").mkdir()
    return {
        "base": base,
        "python": _fresh_environment(base / "fresh"),
        "env": {
            "HOME": str(base / "home"),
            "ACECOURSE_REPO": source.as_uri(),
            "ACECOURSE_REF": "course-ref",
            "ACECOURSE_RMD17_URL": served.as_uri(),
            "PIP_NO_INDEX": "1",  # every dependency is visible through the .pth: nothing to fetch
            "PIP_NO_BUILD_ISOLATION": "0",  # (pip's spelling of --no-build-isolation)
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
    }


REPORT = """
import acecourse, acecourse.data.rmd17 as r
print("ACECOURSE", acecourse.__file__)
print("DATA", r.resolve_data_dir())
"""


def test_fresh_environment_does_not_see_the_course(sandbox) -> None:
    result = _run(
        sandbox["python"],
        "import importlib.util, numpy, torch, mace\nprint(importlib.util.find_spec('acecourse'))",
        sandbox["base"] / "work",
    )
    assert result.returncode == 0 and result.stdout.strip() == "None", result.stderr


@pytest.mark.parametrize(
    "guard",
    [{"ACECOURSE_CI": "1"}, {"ACECOURSE_BOOK_BUILD": "1"}, {"in_clone": "1"}],
    ids=["ci", "book-build", "clone"],
)
def test_cell_installs_nothing_in_ci_the_book_build_or_a_clone(sandbox, guard) -> None:
    cwd = sandbox["base"] / "work"
    if guard.pop("in_clone", None):
        cwd = sandbox["base"] / "clone" / "00_chapter"
        (sandbox["base"] / "clone" / "acecourse").mkdir(parents=True, exist_ok=True)
        cwd.mkdir(exist_ok=True)
    code = FORBID_SIDE_EFFECTS + setup_cell.cell_source(rmd17=True)
    result = _run(sandbox["python"], code, cwd, **sandbox["env"], **guard)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: the course package acecourse is not installed"), last
    assert "pip install -e ." in last and "FORBIDDEN" not in result.stderr


@needs_data
def test_cell_installs_the_course_and_fetches_rmd17_in_a_fresh_environment(sandbox) -> None:
    python, cwd = sandbox["python"], sandbox["base"] / "work"
    result = _run(python, setup_cell.cell_source(rmd17=True) + REPORT, cwd, **sandbox["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    installed = Path(lines["ACECOURSE"])
    assert installed.is_relative_to(sandbox["base"] / "fresh"), installed  # not the editable one
    cache = sandbox["base"] / "home" / ".cache" / "acecourse" / "rmd17"
    assert Path(lines["DATA"]) == cache
    for name, digest in rmd17.SHA256.items():
        assert rmd17.sha256_of(cache / name) == digest
    # run again, as on re-opening the notebook: installed and fetched, so nothing happens
    again = _run(
        python, FORBID_SIDE_EFFECTS + setup_cell.cell_source(rmd17=True), cwd, **sandbox["env"]
    )
    assert again.returncode == 0, again.stderr


def test_cell_does_nothing_where_the_course_is_installed(tmp_path) -> None:
    """In the course's .venv: no process, no URL (the rMD17 variant when the data are there)."""
    code = FORBID_SIDE_EFFECTS + setup_cell.cell_source(rmd17=HAVE_DATA)
    code += "\nprint(sorted(k for k in globals() if 'acecourse' in k))"
    result = _run(Path(sys.executable), code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # the cell leaves no name behind


# --------------------------------------------------------------------------- website kernels
def test_kernel_environment_keeps_existing_filters_and_puts_ours_last() -> None:
    from kernel_env import WARNING_FILTERS, kernel_environment

    env = kernel_environment({"PYTHONWARNINGS": "error::ResourceWarning"})
    assert env["ACECOURSE_BOOK_BUILD"] == "1"
    assert env["PYTHONWARNINGS"].split(",") == ["error::ResourceWarning", *WARNING_FILTERS]
    for entry in WARNING_FILTERS:  # Python's -W syntax: action:message:category, no separators
        assert "," not in entry and len(entry.split(":")) <= 5, entry


def test_kernel_filters_hide_library_noise_and_nothing_else(tmp_path) -> None:
    """With the kernels' PYTHONWARNINGS, building e3nn and mace-torch modules warns about nothing
    (without it, TorchScript warns), while a warning of our own code still shows."""
    from kernel_env import kernel_environment

    code = (
        "import warnings\n"
        "import acecourse.mace\n"  # imports mace-torch (and e3nn before it)
        "from e3nn import o3\n"
        "o3.FullyConnectedTensorProduct('2x1o', '2x1o', '1x0e + 1x1e')\n"
        "warnings.warn('a warning of ours', UserWarning)\n"
    )
    plain = _run(Path(sys.executable), code, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "TorchScript type system" in plain.stderr  # the noise the filter is for
    quiet = _run(Path(sys.executable), code, tmp_path, **kernel_environment({}))
    assert quiet.returncode == 0, quiet.stderr
    warnings = [line for line in quiet.stderr.splitlines() if "Warning:" in line]
    assert warnings == [warnings[0]] and "UserWarning: a warning of ours" in warnings[0], (
        quiet.stderr
    )
    # e3nn's constants are loaded before mace-torch sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in plain.stderr + quiet.stderr
