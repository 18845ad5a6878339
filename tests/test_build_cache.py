"""The incremental book build never shows outputs computed from older inputs.

``scripts/book_cache.py`` wraps ``jupyter-book build`` (``execute_notebooks: cache``): it drops a
notebook's cached outputs when a module of the package it imports, a global input or the
environment changed.  The unit tests check the dependency analysis on a small package and on the
course's own notebooks; the build test runs the real wrapper on a one-notebook book whose notebook
imports a one-module package, and fails if the wrapper's invalidation is removed (the page would
keep the old value).
"""

from __future__ import annotations

import re
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


# --------------------------------------------------------------------------- the real wrapper
def make_book(root: Path) -> None:
    config = {
        "title": "tiny",
        "only_build_toc_files": True,
        "exclude_patterns": ["tinypkg", "_build"],
        "execute": {"execute_notebooks": "cache", "run_in_temp": False, "timeout": 120},
    }
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    (root / "_toc.yml").write_text(
        yaml.safe_dump({"format": "jb-book", "root": "intro", "chapters": [{"file": "nb"}]})
    )
    (root / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    write_package(root, {"tinypkg/__init__.py": "VALUE = 1\n", "tinypkg/other.py": "X = 0\n"})
    write_notebook(
        root / "nb.ipynb",
        "with open('runs.txt', 'a') as f:\n    f.write('run\\n')",  # counts executions
        "import tinypkg\nprint(f'value={tinypkg.VALUE}')",
    )


def build(root: Path, capsys) -> tuple[int, int, list[str], str]:
    """Run the wrapper; return exit status, executions so far, shown values, notebook status."""
    status = book_cache.main(["--root", str(root), "--package", "tinypkg", "--input", "_config.yml",
                              "--", "-W", "-n", "--keep-going"])  # fmt: skip
    out = capsys.readouterr().out
    runs = (root / "runs.txt").read_text().count("run") if (root / "runs.txt").exists() else 0
    html = root / "_build" / "html" / "nb.html"
    values = re.findall(r"value=(\d+)", html.read_text()) if html.exists() else []
    row = re.search(r"^\s+\S+ s\s+(\S+(?: output)?)\s+nb\.ipynb$", out, re.MULTILINE)
    return status, runs, values, row.group(1) if row else ""


def test_build_reexecutes_a_notebook_when_its_package_changes(tmp_path: Path, capsys) -> None:
    make_book(tmp_path)
    assert build(tmp_path, capsys) == (0, 1, ["1"], "executed")
    # Nothing changed: outputs come from the cache, the notebook does not run.
    assert build(tmp_path, capsys) == (0, 1, ["1"], "cached")
    # The package the notebook imports changed; its code did not: executed again, new value.
    (tmp_path / "tinypkg/__init__.py").write_text("VALUE = 2\n")
    assert build(tmp_path, capsys) == (0, 2, ["2"], "executed")
    # A package change that breaks the notebook fails the build, and the next build with no
    # change fails again (Sphinx's incremental build must not hide the failure).
    (tmp_path / "tinypkg/__init__.py").write_text("raise RuntimeError('broken package')\n")
    status, runs, _, state = build(tmp_path, capsys)
    assert (status != 0, runs, state) == (True, 3, "FAILED")
    status, runs, _, state = build(tmp_path, capsys)
    assert (status != 0, runs, state) == (True, 4, "FAILED")
    (tmp_path / "tinypkg/__init__.py").write_text("VALUE = 3\n")
    assert build(tmp_path, capsys) == (0, 5, ["3"], "executed")


def test_the_book_build_goes_through_the_wrapper() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert not config["execute"].get("cache"), "the cache must stay inside _build/"
    script = (ROOT / "scripts" / "build_book.sh").read_text()
    assert re.search(r"^\s*python scripts/book_cache\.py\b", script, re.MULTILINE)
    assert not re.search(r"^\s*jupyter-book build", script, re.MULTILINE)


def test_cli_rejects_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as error:
        book_cache.main(["--root", str(tmp_path)])
    assert error.value.code == 2
