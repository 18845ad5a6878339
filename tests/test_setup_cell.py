"""Tests of the chapters' setup cell (``scripts/setup_cell.py``).

* Every notebook of the table of contents carries the current cell, three lines of at most 88
  characters that ruff finds nothing in, also with the site's pinned commit; IPython reads the
  install line as the ``%pip`` magic.  No chapter reads a file by a path relative to its folder:
  what it reads comes with the package (``acecourse.ARTIFACTS``, the shipped rMD17 split).
* The tool replaces only the first setup cell (or inserts one) and takes the repository from
  ``_config.yml``; the site's downloadable copy names the build's commit, abbreviated to fit.
* The cell itself, run by IPython as in Colab: in a fresh Python environment without the course,
  from a working directory outside any clone, it pip-installs the course from a git repository
  (a copy of this tree's package, artifacts and ``pyproject.toml``, served as ``file://``, with
  a later commit on top) at an abbreviated commit; the chapter 04/03's imports and artifact then
  work, and rMD17 loads with no download.  Run again it starts no process.  A commit the
  repository lacks leaves the course uninstalled (pip's error names the ref).  The fresh
  environment sees the course's ``.venv`` site-packages through a ``.pth`` file, so pip finds
  every dependency installed (``PIP_NO_INDEX``), but not its editable ``acecourse``.

Run time: about 25 s (one pip install with a wheel build, a few Python start-ups).
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
import setup_cell  # scripts/ and book/_ext are on the path through conftest
import source_commit
from conftest import BACKGROUND_ENV, ROOT, toc_notebooks

NOTEBOOKS = [n for n in toc_notebooks() if (ROOT / n).is_file()]


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


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


# --------------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NOTEBOOKS)
def test_toc_notebook_carries_the_current_setup_cell(notebook: str) -> None:
    nb = _read(ROOT / notebook)
    problems = setup_cell.problems(nb, setup_cell.cell_source())
    assert not problems, f"{notebook}: {problems} (run: python scripts/setup_cell.py --write)"
    relative = [line for code in _code(nb) for line in code.splitlines()
                if re.search(r"""["']\.\.(/|["'])""", line)]  # "../x", '../x', Path("..")
    assert not relative, f"{notebook} reads files next to the chapter: {relative}"


def test_check_command_passes_on_the_repository(capsys) -> None:
    assert setup_cell.main(["--check"]) == 0
    assert "setup cell current in all" in capsys.readouterr().out


def test_cell_is_three_short_ruff_clean_lines_with_a_pip_magic(tmp_path) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    pinned = source_commit.with_commit(setup_cell.cell_source().splitlines()[-1], "f" * 40)
    pinned = setup_cell.cell_source(ref=pinned.split("@")[-1])
    for text in setup_cell.cell_source(), pinned:
        lines = text.splitlines()
        assert len(lines) <= 3 and max(map(len, lines)) <= 88, lines
        python = TransformerManager().transform_cell(text)
        assert "get_ipython().run_line_magic('pip', 'install -qq git+https://" in python
        compile(python, "cell", "exec")
    nb = tmp_path / "cell.ipynb"
    nb.write_text(json.dumps(setup_cell.with_setup_cell(_notebook(), pinned)))
    ruff = [sys.executable, "-m", "ruff", "check", "--quiet", str(nb)]
    result = subprocess.run([*ruff, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_write_replaces_only_the_first_setup_cell_or_inserts_one() -> None:
    nb = setup_cell.with_setup_cell(_notebook(("markdown", "# T"), ("code", "x = 1")), "new")
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "code"]
    assert setup_cell.problems(nb, "new") == []
    assert nb["cells"][1]["metadata"]["tags"] == setup_cell.TAGS
    second = json.loads(json.dumps(nb["cells"][1])) | {"id": "second"}
    nb["cells"].append(second)
    assert "2 setup cells" in setup_cell.problems(nb, "new")[0]
    nb["cells"][1]["source"] = ["old"]
    assert any("differs" in p for p in setup_cell.problems(nb, "new"))
    setup_cell.with_setup_cell(nb, "newer")
    assert nb["cells"][1]["source"] == ["newer"] and nb["cells"][1]["id"] == "acecourse-setup"
    assert nb["cells"][3]["source"] == second["source"]  # a second one is left alone
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x"}]
    nb["cells"][1]["metadata"]["tags"] = ["acecourse-setup"]
    assert len(setup_cell.problems(nb, "newer")) == 3  # 2 cells, no remove-cell, outputs


def test_repository_and_ref_come_from_the_config(tmp_path) -> None:
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.org/fork/\n  branch: v1.2\n")
    assert setup_cell.repository(config) == ("https://example.org/fork", "v1.2")
    assert setup_cell.cell_source(*setup_cell.repository(config)).endswith(
        "%pip install -qq git+https://example.org/fork@v1.2"
    )
    config.write_text("title: x\n")
    with pytest.raises(ValueError):
        setup_cell.repository(config)


def test_site_copy_names_the_build_commit(tmp_path) -> None:
    """book/_ext/source_commit.py: the downloadable copy installs the site's commit,
    abbreviated to keep the line within 88 characters; nothing else changes."""
    nb = setup_cell.with_setup_cell(
        _notebook(("markdown", "# T"), ("code", "x = 1")), setup_cell.cell_source()
    )
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    commit = "0123456789abcdef" * 2 + "01234567"
    assert source_commit.pin_notebook(path, commit)
    pinned = _read(path)["cells"][1]["source"]
    assert pinned[:-1] == nb["cells"][1]["source"][:-1]
    assert len(pinned[-1]) == 88 and re.search("@012345678", pinned[-1])
    assert _read(path)["cells"][2] == nb["cells"][2]
    assert not source_commit.pin_notebook(path, commit)  # idempotent
    head = source_commit.build_commit(ROOT)
    assert head is not None and re.fullmatch("[0-9a-f]{40}", head)


# --------------------------------------------------------------------------- the cell, run
#: Run in the fresh environment: the cell (stdin) in an IPython shell, then a report.
RUN = """
import importlib, os, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell(CELL)
print("EXIT", shell.user_ns.get("_exit_code"))
importlib.invalidate_caches()
if importlib.util.find_spec("acecourse") is None:
    print("INSTALLED none")
    raise SystemExit
STRICT = []
def _forbid(event, args):  # from here on no network; once STRICT, no process (but ldconfig's)
    if STRICT and event in ("subprocess.Popen", "os.system", "os.posix_spawn"):
        name = os.path.basename(str(args[1][0] if isinstance(args[1], list) else args[1]))
        if name not in ("ldconfig", "gcc", "cc", "ld", "objdump"):
            raise RuntimeError(f"FORBIDDEN {event}")
    if event in ("socket.connect", "urllib.Request"):
        raise RuntimeError(f"FORBIDDEN {event}")
sys.addaudithook(_forbid)
import json
import acecourse
from acecourse import ARTIFACTS, design_space
print("INSTALLED", acecourse.__file__)
print("ARTIFACTS", ARTIFACTS)
print("SWEEP", len(json.loads((ARTIFACTS / "phase04/sweep.json").read_text())["points"]))
print("POINTS", len(design_space.design_points()))
from acecourse.data import load_rmd17_ethanol
print("FRAMES", len(load_rmd17_ethanol("train", indices=[0, 1])))
STRICT.append(True)
print("AGAIN", "ok" if shell.run_cell(CELL).success else "failed")
"""


def _fresh_environment(where: Path) -> Path:
    """A venv without the course; the course .venv's packages are visible through a .pth file."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # a path line of a .pth file is added to sys.path; the .pth files found there (the editable
    # acecourse's among them) are not processed
    (Path(purelib) / "course-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _sandbox(base: Path) -> dict:
    """A git repository with this tree's package, artifacts and pyproject.toml at one commit
    (and a later one on top); a fresh venv; a home and a working directory outside it."""
    source = base / "repo"
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in listed:
        if name.split("/")[0] in ("acecourse", "artifacts", "pyproject.toml"):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    assert (source / "acecourse/artifacts").is_symlink()  # how the artifacts join the package
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(source)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(source)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "course"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "later"], check=True)
    for folder in "home", "work":
        (base / folder).mkdir()
    env = {k: v for k, v in BACKGROUND_ENV.items()
           if not k.startswith(("ACECOURSE_", "PIP_", "PYTHON", "VIRTUAL_ENV"))
           and k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}  # set here by mace-torch's import
    # PIP_NO_BUILD_ISOLATION=0 turns build isolation *off* (a pip quirk): offline, the build
    # backend comes from the environment instead of an isolated download
    env |= {"HOME": str(base / "home"), "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return {"base": base, "repo": source.as_uri(), "commit": commit, "env": env,
            "python": _fresh_environment(base / "fresh")}


def _run_cell(sandbox: dict, ref: str) -> dict[str, str]:
    cell = setup_cell.cell_source(sandbox["repo"], ref)
    result = subprocess.run(
        [str(sandbox["python"]), "-c", f"CELL = {cell!r}\n" + RUN],
        cwd=sandbox["base"] / "work", env=sandbox["env"], capture_output=True, text=True,
        timeout=600, check=False,
    )
    report = dict(line.split(" ", 1) for line in result.stdout.splitlines()
                  if re.match(r"[A-Z]+ ", line))
    report["output"] = result.stdout + result.stderr
    return report


def _cell_runs() -> dict:
    """The cell run at a commit the repository lacks, then at its commit, in a fresh venv."""
    base = Path(tempfile.mkdtemp(prefix="setup_cell_"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    sandbox = _sandbox(base)
    return {"missing": _run_cell(sandbox, "0" * 12),  # a commit the repository does not have
            "report": _run_cell(sandbox, sandbox["commit"][:10]), "base": base}  # fmt: skip


@pytest.mark.background(job=_cell_runs)
def test_cell_installs_the_course_with_what_the_chapters_read(background) -> None:
    missing = background["missing"]
    assert missing["INSTALLED"] == "none" and missing["EXIT"] != "0", missing["output"]
    assert "000000000000" in missing["output"]  # pip's error names the ref

    report = background["report"]
    purelib = str(background["base"] / "fresh")
    assert report["EXIT"] == "0", report["output"]
    assert report.get("INSTALLED", "").startswith(purelib), report["output"]  # not this clone's
    assert report["ARTIFACTS"].startswith(purelib)
    points = json.loads((ROOT / "artifacts/phase04/sweep.json").read_text())["points"]
    assert int(report["SWEEP"]) == len(points) and int(report["POINTS"]) == 7
    assert report["FRAMES"] == "2"  # the shipped split: no download (PIP_NO_INDEX, no network)
    assert report.get("AGAIN") == "ok", report["output"]  # installed: the cell runs nothing
