"""The incremental book build never shows outputs computed from older inputs.

``book/_ext/build_cache.py`` (with ``scripts/book_cache.py``) drops a notebook's cached outputs
(``execute_notebooks: cache``) when a module of the package it imports, a module it imports from
a folder such as ``../scripts``, a file it names, a global input or the environment changed, in
every build.  The unit tests check the dependency analysis on a small package and on the course's
own notebooks.  The build tests run the real wrapper (``scripts/book_cache.py``, what
``build_book.sh`` runs) and a plain ``jupyter-book build`` on a tiny book whose notebooks import a
package and a script module and read a data file; they fail if the invalidation is removed (the
page would keep the old value).  A numbered tiny book checks that an unchanged rebuild rewrites no
page (``book/_ext/course_numbering.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import book_cache


def write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_notebook(path: Path, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in code]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


PACKAGE = {
    "pkg/__init__.py": '"""Root."""\n',
    "pkg/a.py": "from .b import helper\nimport pkg.sub\n",
    "pkg/b.py": "import numpy\n\ndef helper():\n    return 1\n",
    "pkg/c.py": "X = 3\n",
    "pkg/sub/__init__.py": "from . import d\n",
    "pkg/sub/d.py": "from ..c import X\n",
    "pkg/sub/e.py": "Y = 4\n",
}


def test_module_closure_follows_absolute_relative_and_parent_imports(tmp_path: Path) -> None:
    write_package(tmp_path, PACKAGE)
    modules = book_cache.package_modules(tmp_path / "pkg", "pkg")
    assert set(modules) == {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d", "pkg.sub.e"}
    # pkg.a -> .b (relative), pkg.sub (absolute) -> sub/__init__ -> .d -> ..c (two levels up)
    closure = book_cache.module_closure({"pkg.a.something"}, modules)
    assert closure == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.d", "pkg.c"}
    assert book_cache.module_closure({"pkg.b"}, modules) == {"pkg", "pkg.b"}
    assert book_cache.module_closure({"numpy"}, modules) == set()


def test_a_dynamic_import_makes_a_module_depend_on_the_whole_package(tmp_path: Path) -> None:
    write_package(
        tmp_path, {**PACKAGE, "pkg/b.py": "import importlib\nimportlib.import_module('x')\n"}
    )
    modules = book_cache.package_modules(tmp_path / "pkg", "pkg")
    assert book_cache.module_closure({"pkg.b"}, modules) == set(modules)


def test_notebook_imports_read_code_cells_and_shell_lines(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    write_notebook(
        notebook,
        "%matplotlib inline\nfrom pkg.sub import d\nimport os",
        "!python -m pkg.c --help",
    )
    names, dynamic = book_cache.notebook_imports(notebook, "pkg")
    assert {"pkg.sub", "pkg.sub.d", "pkg.c"} <= names
    assert not any(name.startswith("os") for name in names)
    assert not dynamic


def test_fingerprint_changes_exactly_with_the_notebook_inputs(tmp_path, monkeypatch) -> None:
    write_package(tmp_path, {**PACKAGE, "data.txt": "1\n"})
    one = tmp_path / "one.ipynb"
    two = tmp_path / "two.ipynb"
    write_notebook(one, "import pkg.a")
    write_notebook(two, "from pkg.sub import e")
    monkeypatch.delenv("ACECOURSE_CI", raising=False)

    def prints() -> tuple[str, str]:
        found = book_cache.fingerprints(tmp_path, [one, two], "pkg", ["data.txt"])
        return found["one.ipynb"], found["two.ipynb"]

    first = prints()
    assert prints() == first  # deterministic
    (tmp_path / "pkg/b.py").write_text("def helper():\n    return 2\n")  # one's import, not two's
    second = prints()
    assert second[0] != first[0]
    assert second[1] == first[1]
    (tmp_path / "pkg/sub/__init__.py").write_text("")  # a parent package of both
    third = prints()
    assert third[0] != second[0] and third[1] != second[1]
    (tmp_path / "data.txt").write_text("2\n")  # a global input
    fourth = prints()
    assert fourth[0] != third[0] and fourth[1] != third[1]
    monkeypatch.setenv("ACECOURSE_CI", "1")  # notebooks shrink their problems under it
    fifth = prints()
    assert fifth[0] != fourth[0] and fifth[1] != fourth[1]


def test_environment_counts_the_pins_and_what_they_require() -> None:
    found = book_cache.installed_closure(["nbformat", "not-a-distribution-xyz"])
    # nbformat requires jsonschema, which requires referencing: both followed, with versions.
    for name in ("nbformat", "jsonschema", "referencing", "traitlets"):
        assert found[name] == metadata.version(name)
    assert found["not-a-distribution-xyz"] == "missing"
    assert "torch" not in found  # not required by nbformat
    assert "pytest" not in found


def test_fingerprint_follows_script_modules_and_named_files(tmp_path, monkeypatch) -> None:
    """A module imported through sys.path (and what it imports), and a file named by a relative
    path, are inputs of the notebook that uses them, and of no other."""
    write_package(
        tmp_path,
        {
            **PACKAGE,
            "tools/helper.py": "import second\nfrom pkg.c import X\n",
            "tools/second.py": "Y = 1\n",
            "tools/unrelated.py": "Z = 1\n",
            "data/value.txt": "1\n",
        },
    )
    (tmp_path / "ch").mkdir()
    one = tmp_path / "ch" / "one.ipynb"
    two = tmp_path / "ch" / "two.ipynb"
    write_notebook(one, 'import sys\nsys.path.insert(0, "../tools")\nimport helper')
    write_notebook(two, 'from pathlib import Path\nPath("../data/value.txt").read_text()')
    monkeypatch.delenv("ACECOURSE_CI", raising=False)
    modules = book_cache.package_modules(tmp_path / "pkg", "pkg")
    closure, local, named = book_cache.notebook_inputs(one, tmp_path, "pkg", modules)
    assert closure == {"pkg", "pkg.c"}  # through the script module
    assert local == [tmp_path / "tools" / "helper.py", tmp_path / "tools" / "second.py"]
    assert named == []  # ../tools is where modules come from, not data
    assert book_cache.notebook_inputs(two, tmp_path, "pkg", modules)[2] == [
        tmp_path / "data" / "value.txt"
    ]

    def prints() -> tuple[str, str]:
        found = book_cache.fingerprints(tmp_path, [one, two], "pkg", [])
        return found["ch/one.ipynb"], found["ch/two.ipynb"]

    first = prints()
    (tmp_path / "tools/second.py").write_text("Y = 2\n")  # imported by the imported module
    second = prints()
    assert second[0] != first[0] and second[1] == first[1]
    (tmp_path / "tools/unrelated.py").write_text("Z = 2\n")  # in the folder, not imported
    assert prints() == second
    (tmp_path / "pkg/c.py").write_text("X = 4\n")  # the package module the script imports
    third = prints()
    assert third[0] != second[0] and third[1] == second[1]
    (tmp_path / "data/value.txt").write_text("2\n")  # the named file
    fourth = prints()
    assert fourth[0] == third[0] and fourth[1] != third[1]


def test_course_notebooks_depend_on_the_modules_they_import() -> None:
    notebooks = book_cache.toc_notebooks(ROOT, ROOT / "_toc.yml")
    assert notebooks
    modules = book_cache.package_modules(ROOT / "acecourse", "acecourse")
    for notebook in notebooks:
        names, dynamic = book_cache.notebook_imports(notebook, "acecourse")
        closure = set(modules) if dynamic else book_cache.module_closure(names, modules)
        # Everything the notebook names is covered by its closure (module or its attribute).
        for name in names:
            assert any(name == m or name.startswith(m + ".") for m in closure), (notebook, name)
        if names:
            assert "acecourse" in closure, notebook
    # 04/03 imports scripts/design_space_sweep.py, which imports the training code
    study = ROOT / "04_multi_ace_framework/03_design_space_study.ipynb"
    closure, local, _ = book_cache.notebook_inputs(study, ROOT, "acecourse", modules)
    assert ROOT / "scripts" / "design_space_sweep.py" in local
    assert {"acecourse.training.trainer", "acecourse.training.data"} <= closure


# --------------------------------------------------------------------------- the real build
EXTENSIONS = str(ROOT / "book" / "_ext")


def make_book(root: Path) -> None:
    config = {
        "title": "tiny",
        "only_build_toc_files": True,
        "exclude_patterns": ["tinypkg", "tools", "data", "_build"],
        "execute": {"execute_notebooks": "cache", "run_in_temp": False, "timeout": 120},
        "sphinx": {
            "local_extensions": {"build_cache": EXTENSIONS},
            "config": {"book_cache_package": "tinypkg", "book_cache_inputs": ["_config.yml"]},
        },
    }
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": "nb"}, {"file": "ch/nb2"}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    (root / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    write_package(
        root,
        {
            "tinypkg/__init__.py": "VALUE = 1\n",
            "tinypkg/other.py": "X = 0\n",
            "tools/helper.py": "HELP = 1\n",
            "data/value.txt": "1\n",
        },
    )
    write_notebook(
        root / "nb.ipynb",
        "with open('runs.txt', 'a') as f:\n    f.write('run\\n')",  # counts executions
        "import tinypkg\nprint(f'value={tinypkg.VALUE}')",
    )
    (root / "ch").mkdir()
    write_notebook(
        root / "ch" / "nb2.ipynb",
        "with open('../runs2.txt', 'a') as f:\n    f.write('run\\n')",
        'import sys\nfrom pathlib import Path\nsys.path.insert(0, "../tools")\nimport helper\n'
        "print(f'help={helper.HELP}')\n"
        "print(f'data={Path(\"../data/value.txt\").read_text().strip()}')",
    )
    # a git work tree, as the course is: the counters the notebooks write (runs.txt, named in
    # their code) are untracked outputs, not inputs
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(root)]
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tiny"], check=True)


def _page(root: Path, name: str) -> str:
    html = root / "_build" / "html" / f"{name}.html"
    return html.read_text() if html.exists() else ""


def _runs(root: Path, name: str) -> int:
    path = root / name
    return path.read_text().count("run") if path.exists() else 0


def build(root: Path, capsys) -> tuple[int, int, list[str], str]:
    """Run the wrapper; return exit status, executions so far, shown values, notebook status."""
    status = book_cache.main(["--root", str(root), "--", "-W", "-n", "--keep-going"])
    out = capsys.readouterr().out
    values = re.findall(r"value=(\d+)", _page(root, "nb"))
    row = re.search(r"^\s+\S+ s\s+(\S+(?: output)?)\s+nb\.ipynb$", out, re.MULTILINE)
    return status, _runs(root, "runs.txt"), values, row.group(1) if row else ""


def plain_build(root: Path) -> int:
    """``jupyter-book build`` itself, without the wrapper."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(root), "-W", "-n", "--keep-going"]
    return subprocess.run(command, cwd=root, capture_output=True, check=False).returncode


def test_build_reexecutes_a_notebook_when_its_package_changes(tmp_path: Path, capsys) -> None:
    make_book(tmp_path)
    assert build(tmp_path, capsys) == (0, 1, ["1"], "executed")
    assert _runs(tmp_path, "runs2.txt") == 1
    # Nothing changed: outputs come from the cache, the notebooks do not run.
    assert build(tmp_path, capsys) == (0, 1, ["1"], "cached")
    assert _runs(tmp_path, "runs2.txt") == 1
    # The package the notebook imports changed; its code did not: executed again, new value.
    (tmp_path / "tinypkg/__init__.py").write_text("VALUE = 2\n")
    assert build(tmp_path, capsys) == (0, 2, ["2"], "executed")
    assert _runs(tmp_path, "runs2.txt") == 1  # the other notebook does not import it
    # A package change that breaks the notebook fails the build, and the next build with no
    # change fails again (Sphinx's incremental build must not hide the failure).
    (tmp_path / "tinypkg/__init__.py").write_text("raise RuntimeError('broken package')\n")
    status, runs, _, state = build(tmp_path, capsys)
    assert (status != 0, runs, state) == (True, 3, "FAILED")
    status, runs, _, state = build(tmp_path, capsys)
    assert (status != 0, runs, state) == (True, 4, "FAILED")
    (tmp_path / "tinypkg/__init__.py").write_text("VALUE = 3\n")
    assert build(tmp_path, capsys) == (0, 5, ["3"], "executed")


def test_every_build_path_reexecutes_on_a_script_or_data_change(tmp_path: Path, capsys) -> None:
    """A plain ``jupyter-book build`` invalidates as the wrapper does; a module imported through
    ``sys.path.insert(0, "../tools")`` and a file read by a relative path are inputs."""
    make_book(tmp_path)
    assert plain_build(tmp_path) == 0
    assert (_runs(tmp_path, "runs.txt"), _runs(tmp_path, "runs2.txt")) == (1, 1)
    page = _page(tmp_path, "ch/nb2")
    assert "help=1" in page and "data=1" in page
    assert plain_build(tmp_path) == 0  # nothing changed
    assert (_runs(tmp_path, "runs.txt"), _runs(tmp_path, "runs2.txt")) == (1, 1)
    (tmp_path / "tinypkg/__init__.py").write_text("VALUE = 2\n")
    assert plain_build(tmp_path) == 0
    assert _runs(tmp_path, "runs.txt") == 2 and "value=2" in _page(tmp_path, "nb")
    (tmp_path / "tools/helper.py").write_text("HELP = 2\n")  # the script module
    assert plain_build(tmp_path) == 0
    assert (_runs(tmp_path, "runs.txt"), _runs(tmp_path, "runs2.txt")) == (2, 2)
    assert "help=2" in _page(tmp_path, "ch/nb2")
    (tmp_path / "data/value.txt").write_text("2\n")  # the data file, through the wrapper
    assert build(tmp_path, capsys)[:2] == (0, 2)
    assert _runs(tmp_path, "runs2.txt") == 3 and "data=2" in _page(tmp_path, "ch/nb2")


def test_unchanged_rebuild_of_numbered_parts_rewrites_no_page(tmp_path: Path) -> None:
    """With phases numbered from 0 (course_numbering) across parts, a rebuild with nothing
    changed writes no HTML page again (it used to rewrite every numbered page)."""
    config = {
        "title": "numbered",
        "only_build_toc_files": True,
        "exclude_patterns": ["_build"],
        "execute": {"execute_notebooks": "off"},
        "html": {"use_multitoc_numbering": True},
        "sphinx": {"local_extensions": {"course_numbering": EXTENSIONS}},
    }
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    parts = []
    for phase in ("00_a", "01_b"):
        (tmp_path / phase).mkdir()
        sections = []
        for name in ("index", "01_x", "02_y"):
            (tmp_path / phase / f"{name}.md").write_text(f"# {phase} {name}\n\nText.\n")
            if name != "index":
                sections.append({"file": f"{phase}/{name}"})
        parts.append(
            {
                "caption": phase,
                "numbered": 2,
                "chapters": [{"file": f"{phase}/index", "sections": sections}],
            }
        )
    (tmp_path / "intro.md").write_text("# Intro\n")
    toc = {"format": "jb-book", "root": "intro", "parts": parts}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    assert plain_build(tmp_path) == 0
    html = tmp_path / "_build" / "html"
    page = (html / "01_b" / "02_y.html").read_text()
    assert re.search(r'<span class="section-number">1\.2\. </span>01_b 02_y', page), page[-3000:]
    written = {p: p.stat().st_mtime_ns for p in html.rglob("*.html")}
    assert plain_build(tmp_path) == 0
    rewritten = [str(p.relative_to(html)) for p, t in written.items() if p.stat().st_mtime_ns != t]
    assert rewritten == [], rewritten
    # a real change of numbering is still written: a chapter inserted before 01_x
    (tmp_path / "01_b" / "00_new.md").write_text("# 01_b new\n")
    parts[1]["chapters"][0]["sections"].insert(0, {"file": "01_b/00_new"})
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    assert plain_build(tmp_path) == 0
    page = (html / "01_b" / "02_y.html").read_text()
    assert re.search(r'<span class="section-number">1\.3\. </span>01_b 02_y', page)


def test_the_book_build_invalidates_in_every_build() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert not config["execute"].get("cache"), "the cache must stay inside _build/"
    assert config["sphinx"]["local_extensions"]["build_cache"] == "book/_ext"
    script = (ROOT / "scripts" / "build_book.sh").read_text()
    assert re.search(r"^\s*python scripts/book_cache\.py\b", script, re.MULTILINE)


def test_cli_rejects_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as error:
        book_cache.main(["--root", str(tmp_path)])
    assert error.value.code == 2
