"""Tests of the chapters' setup cell (``scripts/setup_cell.py``).

* Every notebook of the table of contents carries the current cell (what ``--check`` checks).
* The tool replaces only the first setup cell (or inserts one), checks the cell, and takes the
  repository from ``_config.yml`` and the chapter's folder from the notebook's path; the cell's
  lines are at most 88 characters and ruff (``pyproject.toml``) finds nothing in it.
* Every repository path a chapter names (``../artifacts/...``, ``../scripts``) is tracked by git,
  so that a clone has it.
* The cell itself, run as a learner in Colab would run it: in a fresh Python environment without
  the course, from a working directory outside any clone, it fetches a git repository (a copy of
  this working tree's tracked package, artifacts, scripts and chapter folder, served as
  ``file://``, with a second commit on top) at its branch, one commit deep, installs the package
  from it with pip and moves into the chapter's folder; then the chapter 04/03's own cell that
  imports ``../scripts`` runs, and its artifact ``../artifacts/phase04/sweep.json`` is read.  Run
  again (a kernel restart) it starts no process and opens no URL, and rMD17 ethanol loads from
  the installed package (no download).  A commit as ref (not the branch's tip) is fetched one
  commit deep too; the site's copy pinned to a commit the remote lacks stops with a one-line
  error that names ``ACECOURSE_REF`` (no fallback), and ``ACECOURSE_REF`` set to the branch
  overrides the pinned commit.  The fresh environment is a venv whose ``sys.path``
  sees the course's ``.venv`` site-packages through a ``.pth`` file (so pip finds every
  dependency installed and downloads nothing: ``PIP_NO_INDEX``) but not its editable
  ``acecourse``.
* Where the course is installed and the notebook is in a clone, the cell starts no process and
  opens no URL, and in CI, in the book build or inside a clone it installs nothing and fails with
  an instruction where the package is missing.

Run time: about 30 s (one pip install from a local clone, a few Python start-ups, one import of
torch and mace-torch in the fresh environment).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, TOC_PATH, toc_notebooks

sys.path.insert(0, str(ROOT / "scripts"))
import setup_cell
import source_commit  # book/_ext (on the path through conftest)

NOTEBOOKS = [n for n in toc_notebooks() if (ROOT / n).is_file()]

#: Prepended to the cell: any process start or URL opened afterwards aborts the run.
FORBID_SIDE_EFFECTS = """\
import os, sys
def _forbid(event, args):
    if event in ("subprocess.Popen", "os.posix_spawn"):  # ctypes.util.find_library's search,
        command = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]  # which a CUDA
        # build of torch runs on import (Python 3.13's subprocess also raises os.posix_spawn)
        if command and os.path.basename(str(command[0])) in ("ldconfig", "gcc", "cc", "ld",
                                                             "objdump"):
            return
    if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "urllib.Request",
                 "socket.connect"):
        raise RuntimeError(f"FORBIDDEN {event}")
sys.addaudithook(_forbid)
"""


def test_the_guard_allows_the_library_search_and_nothing_else(tmp_path) -> None:
    """FORBID_SIDE_EFFECTS lets ctypes find a shared library (a CUDA build of torch does it on
    import, with ldconfig) and still stops any other process."""
    code = FORBID_SIDE_EFFECTS + (
        "import ctypes.util, subprocess\n"
        "print('found', ctypes.util.find_library('c'), flush=True)\n"
        "subprocess.run(['git', '--version'])\n"
    )
    result = _run(Path(sys.executable), code, tmp_path)
    assert result.stdout.startswith("found libc.so"), result.stdout + result.stderr
    assert result.returncode == 1 and "RuntimeError: FORBIDDEN subprocess.Popen" in result.stderr


# --------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NOTEBOOKS)
def test_toc_notebook_carries_the_current_setup_cell(notebook: str) -> None:
    nb = setup_cell.read(ROOT / notebook)
    chapter = setup_cell.chapter_of(ROOT / notebook, ROOT, setup_cell.path_to_book())
    problems = setup_cell.problems(nb, chapter=chapter)
    assert not problems, f"{notebook}: {problems} (run: python scripts/setup_cell.py --write)"


def _tracked() -> set[str]:
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout
    return {name for name in listed.split("\0") if name}


def _relative_paths(code: str) -> set[str]:
    """String constants of the code that start with ``../`` (paths relative to the chapter)."""
    python = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()
    )
    return {
        node.value
        for node in ast.walk(ast.parse(python))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("../")
    }


def test_repository_files_the_chapters_name_are_tracked() -> None:
    """A clone (the setup cell's, Binder's) has every file a chapter reads by a relative path."""
    tracked = _tracked()
    folders = {str(Path(name).parent) for name in tracked} | {
        str(parent) for name in tracked for parent in Path(name).parents
    }
    named = 0
    for notebook in NOTEBOOKS:
        nb = setup_cell.read(ROOT / notebook)
        code = "\n".join(
            setup_cell._source(c)
            for c in nb["cells"]
            if c["cell_type"] == "code" and not setup_cell._is_setup(c)
        )
        for literal in _relative_paths(code):
            path = os.path.normpath(str(Path(notebook).parent / literal))
            assert path in tracked or path in folders, (
                f"{notebook} names {literal!r}, which git does not track: a clone would lack it"
            )
            named += 1
    assert named >= 5  # 01/03, 02/04, 03/05 read artifacts; 04/03 also imports ../scripts


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
    assert "".join(cell["source"]) == setup_cell.cell_source()
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
    nb = fresh()
    assert setup_cell.problems(nb, chapter="00_other") == [
        "the setup cell's text differs from scripts/setup_cell.py's (run --write)"
    ]


def test_write_replaces_only_the_first_setup_cell() -> None:
    """--write rewrites the first tagged cell where it is and leaves every other cell alone."""
    nb = _notebook(
        ("markdown", "# T"),
        ("code", "x = 1"),
        ("code", "# an old setup cell"),
        ("code", "y = 2"),
        ("code", "# a second tagged cell"),
    )
    for i in (2, 4):
        nb["cells"][i]["metadata"]["tags"] = ["acecourse-setup", "remove-cell"]
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "1"}]
    before = json.loads(json.dumps(nb))
    setup_cell.with_setup_cell(nb, chapter="ch")
    assert [c["id"] for c in nb["cells"]] == ["c0", "c1", "c2", "c3", "c4"]
    for i in (0, 1, 3, 4):
        assert nb["cells"][i] == before["cells"][i], i
    assert "".join(nb["cells"][2]["source"]) == setup_cell.cell_source(chapter="ch")
    # --check still reports what --write leaves for a person to decide
    problems = setup_cell.problems(nb, chapter="ch")
    assert any("2 setup cells" in p for p in problems), problems
    assert any("not the first code cell" in p for p in problems), problems


def test_chapter_folder_comes_from_the_notebook_path(tmp_path) -> None:
    notebook = tmp_path / "03_x" / "01_y.ipynb"
    assert setup_cell.chapter_of(notebook, tmp_path) == "03_x"
    assert setup_cell.chapter_of(tmp_path / "intro.ipynb", tmp_path) == "."
    assert setup_cell.chapter_of(notebook, tmp_path, "book/src") == "book/src/03_x"
    text = setup_cell.cell_source("https://x/y", "main", "03_x")
    assert '_acecourse_setup("03_x")' in text.splitlines()


def test_repository_and_ref_come_from_the_config(tmp_path) -> None:
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://github.com/a-fork/course/\n  branch: v1.2\n")
    repo, ref = setup_cell.repository(config)
    assert (repo, ref) == ("https://github.com/a-fork/course", "v1.2")
    text = setup_cell.cell_source(repo, ref)
    assert '"https://github.com/a-fork/course"' in text
    assert setup_cell.ref_line("v1.2") in text.splitlines()
    assert text.splitlines().count(setup_cell.ref_line("v1.2")) == 1  # what the site rewrites
    assert "ACECOURSE_REF=v1.2 for the branch head" in text  # what the error says to do
    compile(text, "<setup cell>", "exec")  # valid Python
    config.write_text("repository:\n  url: https://github.com/a-fork/course\n")
    with pytest.raises(ValueError, match="repository.branch"):
        setup_cell.repository(config)


def test_cell_is_ruff_clean_and_fits_a_notebook_line() -> None:
    """The cell as the notebooks carry it (each chapter's folder) and as the site pins it (a
    full commit hash as ref): lines of at most 88 characters, nothing for ruff; and it is short
    (at most 45 lines, comments included)."""
    book = setup_cell.path_to_book()
    chapters = sorted({setup_cell.chapter_of(ROOT / n, ROOT, book) for n in NOTEBOOKS})
    for chapter in chapters:
        cell = setup_cell.cell_source(chapter=chapter)
        assert max(map(len, cell.splitlines())) <= 88, chapter
    pinned = "".join(source_commit.with_commit(line, "a" * 40) for line in cell.splitlines(True))
    assert pinned != cell and len(cell.splitlines()) <= 45
    ruff = [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml")]
    for text in (cell, pinned):
        assert max(map(len, text.splitlines())) <= 88
        found = subprocess.run(
            [*ruff, "--stdin-filename", "cell.py", "-"],
            input=text,
            capture_output=True,
            text=True,
            check=False,
        )
        assert found.returncode == 0, found.stdout + found.stderr


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
    written = setup_cell.read(tmp_path / "ch" / "one.ipynb")["cells"][1]
    assert '_acecourse_setup("ch")\n' in written["source"]
    # a fork changes the repository: every cell is stale until --write
    (tmp_path / "_config.yml").write_text(
        "repository:\n  url: https://github.com/fork/repo\n  branch: main\n"
    )
    assert setup_cell.main(["--check", *argv]) == 1
    assert "differs" in capsys.readouterr().err
    # --write with notebooks named writes only those
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - chapters:\n      - file: ch/one\n"
        "      - file: ch/two\n"
    )
    setup_cell.write(tmp_path / "ch" / "two.ipynb", _notebook(("markdown", "# 2"), ("code", "2")))
    two = tmp_path / "ch" / "two.ipynb"
    assert setup_cell.main(["--write", *argv, str(two)]) == 0
    assert "wrote the setup cell into ch/two.ipynb" in capsys.readouterr().out
    assert setup_cell.main(["--check", *argv, str(two)]) == 0
    assert setup_cell.main(["--check", *argv]) == 1  # one.ipynb still names the old repository
    err = capsys.readouterr().err
    assert "ch/one.ipynb" in err and "ch/two.ipynb" not in err
    with pytest.raises(SystemExit):
        setup_cell.main(["--write", *argv, str(tmp_path / "intro.md")])  # not a toc notebook
    assert "not in the table of contents" in capsys.readouterr().err


def test_site_copy_names_the_build_commit(tmp_path) -> None:
    """book/_ext/source_commit.py: the downloadable copy fetches the site's commit (only that,
    no branch to fall back to); only the first setup cell's ref line changes, and a later build
    replaces the commit."""
    nb = setup_cell.with_setup_cell(
        _notebook(("markdown", "# T"), ("code", "x = 1")), ref="main", chapter="ch"
    )
    nb["cells"].append(json.loads(json.dumps(nb["cells"][1])) | {"id": "second"})
    path = tmp_path / "nb.ipynb"
    setup_cell.write(path, nb)
    first, second = "a" * 40, "b" * 40
    assert source_commit.pin_notebook(path, first)
    pinned = setup_cell.read(path)
    lines = pinned["cells"][1]["source"]
    assert setup_cell.ref_line(first) + "\n" in lines
    changed = [i for i, line in enumerate(lines) if line != nb["cells"][1]["source"][i]]
    assert len(changed) == 1 and len(lines) == len(nb["cells"][1]["source"])
    assert pinned["cells"][3] == nb["cells"][3] and pinned["cells"][:1] == nb["cells"][:1]
    assert not source_commit.pin_notebook(path, first)  # idempotent
    assert source_commit.pin_notebook(path, second)
    assert setup_cell.ref_line(second) + "\n" in setup_cell.read(path)["cells"][1]["source"]
    head = source_commit.build_commit(ROOT)  # the repository's HEAD, as a full hash
    assert head is not None and re.fullmatch("[0-9a-f]{40}", head)


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


#: The chapter run from outside a clone: it imports ../scripts and reads ../artifacts.
CHAPTER = "04_multi_ace_framework/03_design_space_study.ipynb"
#: What a clone must hold for it (tracked files only, from this working tree).
CLONED = ("acecourse", "pyproject.toml", "artifacts", "scripts", "04_multi_ace_framework")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> dict:
    """A git repository with this working tree's tracked package, artifacts, scripts and the
    chapter's folder; a fresh venv; a home and a working directory."""
    base = tmp_path_factory.mktemp("setup_cell")
    source = base / "repo"
    tracked = _tracked()
    for name in sorted(tracked):
        if name.split("/")[0] in CLONED and (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run(["git", "init", "-q", "-b", "course-ref", str(source)], check=True)
    subprocess.run([*git, "-C", str(source), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(source), "commit", "-q", "-m", "course"], check=True)
    commit = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    # a later commit on the branch: the branch's tip is not ``commit``, and a shallow fetch of
    # either has one commit where a full clone would have two
    later = [*git, "-C", str(source), "commit", "-q", "--allow-empty", "-m", "later"]
    subprocess.run(later, check=True)
    (base / "home").mkdir()
    (base / "work").mkdir()
    return {
        "base": base,
        "commit": commit,
        "python": _fresh_environment(base / "fresh"),
        "env": {
            "HOME": str(base / "home"),
            "ACECOURSE_REPO": source.as_uri(),
            "ACECOURSE_REF": "course-ref",
            "PIP_NO_INDEX": "1",  # every dependency is visible through the .pth: nothing to fetch
            "PIP_NO_BUILD_ISOLATION": "0",  # (pip's spelling of --no-build-isolation)
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        },
    }


REPORT = """
import os, acecourse
print("ACECOURSE", acecourse.__file__)
print("CWD", os.getcwd())
"""

#: A chapter's data load (00/01's), then where the file came from.
LOAD = """
from acecourse.data import load_rmd17_ethanol
atoms = load_rmd17_ethanol("train", indices=[0])[0]
import acecourse.data.rmd17 as r
print("DATA", r.rmd17_path("ethanol", "train"), len(atoms))
"""


def _chapter_code(needle: str) -> str:
    """The first code cell of :data:`CHAPTER` (not the setup cell) that contains ``needle``."""
    nb = setup_cell.read(ROOT / CHAPTER)
    return next(
        setup_cell._source(c)
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and not setup_cell._is_setup(c)
        and needle in setup_cell._source(c)
    )


def _report(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if re.match(r"[A-Z]+ ", line))


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
    code = FORBID_SIDE_EFFECTS + setup_cell.cell_source(chapter="00_chapter")
    result = _run(sandbox["python"], code, cwd, **sandbox["env"], **guard)
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: the course package acecourse is not installed"), last
    assert "pip install -e ." in last and "FORBIDDEN" not in result.stderr


def test_cell_brings_the_repository_outside_a_clone(sandbox) -> None:
    """Colab: clone, install, chdir into the chapter; then the chapter's own cells that import
    ../scripts and read ../artifacts run from there, and rMD17 loads with no download."""
    python, work, home = sandbox["python"], sandbox["base"] / "work", sandbox["base"] / "home"
    chapter = str(Path(CHAPTER).parent)
    cell = setup_cell.cell_source(ref="course-ref", chapter=chapter)
    imports = _chapter_code("../scripts")  # sys.path.insert(... "../scripts"); import ...
    reads = next(  # the chapter's line that reads its artifact
        line for line in _chapter_code("../artifacts/").splitlines() if "../artifacts/" in line
    )
    reads += '\nprint("READ ok")\n'
    result = _run(python, cell + "\n" + imports + "\n" + reads + REPORT, work, **sandbox["env"])
    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(result.stdout)
    clone = home / "acecourse-course-ref"
    assert Path(report["CWD"]) == clone / chapter
    assert Path(report["ACECOURSE"]).is_relative_to(sandbox["base"] / "fresh")  # pip-installed
    assert report["READ"] == "ok"
    assert not list(home.glob("*.part"))

    # a kernel restart: run again from outside; installed and cloned: no process, no URL; the
    # chapter's data load reads the file the installed package ships (no download)
    again = _run(python, FORBID_SIDE_EFFECTS + cell + REPORT + LOAD, work, **sandbox["env"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert Path(_report(again.stdout)["CWD"]) == clone / chapter
    data, n_atoms = _report(again.stdout)["DATA"].rsplit(" ", 1)
    assert Path(data).is_relative_to(sandbox["base"] / "fresh") and n_atoms == "9", data
    assert not (home / ".cache" / "acecourse").exists()  # pooch's cache: nothing fetched

    assert _git(clone, "rev-list", "--count", "HEAD") == "1"  # the branch, one commit deep

    # a commit as ref (not the branch's tip): fetched by its hash, one commit deep
    commit = sandbox["commit"]
    env = {**sandbox["env"], "ACECOURSE_REF": commit}
    pinned = _run(python, cell + REPORT, work, **env)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert Path(_report(pinned.stdout)["CWD"]) == home / f"acecourse-{commit}" / chapter
    assert _git(home / f"acecourse-{commit}", "rev-parse", "HEAD") == commit
    assert _git(home / f"acecourse-{commit}", "rev-list", "--count", "HEAD") == "1"

    # the site's copy names only the build commit; one the remote lacks is a one-line error
    # that says what to do, with no fallback to the branch and nothing left in the home folder
    missing = "0" * 40
    site_copy = "".join(source_commit.with_commit(line, missing) for line in cell.splitlines(True))
    assert setup_cell.ref_line(missing) in site_copy.splitlines()
    env = {k: v for k, v in sandbox["env"].items() if k != "ACECOURSE_REF"}
    failed = _run(python, site_copy + REPORT, work, **env)
    assert failed.returncode == 1 and "CWD" not in failed.stdout, failed.stdout + failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"RuntimeError: could not fetch {missing} of "), failed.stderr
    assert "not our ref" in last, last  # git's reason
    assert "set ACECOURSE_REF=course-ref for the branch head or download" in last, last
    assert sorted(p.name for p in home.glob("acecourse-*")) == sorted(
        [f"acecourse-{commit}", "acecourse-course-ref"]
    )
    # ACECOURSE_REF overrides the pinned commit
    branch = _run(python, FORBID_SIDE_EFFECTS + site_copy + REPORT, work, **sandbox["env"])
    assert branch.returncode == 0, branch.stdout + branch.stderr
    assert Path(_report(branch.stdout)["CWD"]) == clone / chapter


def _git(where: Path, *args: str) -> str:
    command = ["git", "-C", str(where), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_cell_does_nothing_where_the_course_is_installed(tmp_path) -> None:
    """In a clone with the course's .venv: no process, no URL, and the working directory stays
    the chapter's folder."""
    (tmp_path / "acecourse").mkdir()
    chapter = tmp_path / "00_chapter"
    chapter.mkdir()
    code = FORBID_SIDE_EFFECTS + setup_cell.cell_source(chapter="00_chapter")
    code += "\nimport os\nprint(sorted(k for k in globals() if 'acecourse' in k), os.getcwd())"
    result = _run(Path(sys.executable), code, chapter)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"[] {chapter}"  # the cell leaves no name behind


# --------------------------------------------------------------------------- website kernels
def test_kernel_environment_keeps_existing_filters_and_puts_ours_last() -> None:
    from kernel_env import WARNING_FILTERS, kernel_environment

    env = kernel_environment({"PYTHONWARNINGS": "error::ResourceWarning"})
    assert env["ACECOURSE_BOOK_BUILD"] == "1"
    assert env["PYTHONWARNINGS"].split(",") == ["error::ResourceWarning", *WARNING_FILTERS]
    for entry in WARNING_FILTERS:  # Python's -W syntax: action:message:category, no separators
        assert "," not in entry and len(entry.split(":")) <= 5, entry


def test_website_kernel_shows_our_warnings_and_no_library_noise(tmp_path) -> None:
    """In a website kernel's environment, building e3nn and mace-torch modules warns about
    nothing (``import acecourse`` filters that noise, see tests/test_warnings.py), while a
    warning of our own code still shows."""
    from kernel_env import kernel_environment

    code = (
        "import warnings\n"
        "import acecourse.mace\n"  # imports mace-torch (and e3nn before it)
        "from e3nn import o3\n"
        "o3.FullyConnectedTensorProduct('2x1o', '2x1o', '1x0e + 1x1e')\n"
        "warnings.warn('a warning of ours', UserWarning)\n"
    )
    quiet = _run(Path(sys.executable), code, tmp_path, **kernel_environment({}))
    assert quiet.returncode == 0, quiet.stderr
    warnings = [line for line in quiet.stderr.splitlines() if "Warning:" in line]
    assert len(warnings) == 1 and "UserWarning: a warning of ours" in warnings[0], quiet.stderr
    # e3nn's constants are loaded before mace-torch sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in quiet.stderr
