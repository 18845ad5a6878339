"""The incremental book build never shows outputs computed from older inputs.

``book/_ext/build_cache.py`` keeps myst-nb's cache (``execute_notebooks: cache``) valid for one
fingerprint of the notebooks' inputs (the package, scripts, artifacts, pins, kernel settings,
Python).  The build tests run ``jupyter-book build`` on a tiny book whose notebooks import a
package and a script module and read a data file; they fail if the rule is removed (a page would
keep the old value).  A numbered tiny book checks that an unchanged rebuild rewrites no page
(``book/_ext/course_numbering.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
import yaml
from conftest import BACKGROUND_ENV, ROOT

EXTENSIONS = ROOT / "book" / "_ext"
sys.path.insert(0, str(EXTENSIONS))
import build_cache


def write_files(root: Path, files: dict[str, str]) -> None:
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


def test_fingerprint_follows_every_input_file(tmp_path: Path, monkeypatch) -> None:
    write_files(tmp_path, {"pkg/a.py": "A = 1\n", "pkg/sub/b.txt": "x\n", "pins.txt": "n==1\n"})
    inputs = ["pkg", "pins.txt", "missing"]
    first = build_cache.fingerprint(tmp_path, inputs)
    write_files(tmp_path, {"pkg/__pycache__/a.cpython.pyc": "compiled", "other.py": "B = 2\n"})
    assert build_cache.fingerprint(tmp_path, inputs) == first  # neither is an input
    for name, text in (("pkg/sub/b.txt", "y\n"), ("pins.txt", "n==2\n"), ("pkg/c.py", "")):
        write_files(tmp_path, {name: text})
        changed = build_cache.fingerprint(tmp_path, inputs)
        assert changed != first, name
        first = changed
    monkeypatch.setenv("ACECOURSE_SOMETHING", "1")
    assert build_cache.fingerprint(tmp_path, inputs) != first


def make_book(root: Path) -> None:
    config = {
        "title": "tiny",
        "only_build_toc_files": True,
        "exclude_patterns": ["tinypkg", "tools", "data", "_build"],
        "execute": {"execute_notebooks": "cache", "run_in_temp": False, "timeout": 120},
        "sphinx": {
            "local_extensions": {"build_cache": str(EXTENSIONS)},
            "config": {"book_cache_inputs": ["tinypkg", "tools", "data"]},
        },
    }
    (root / "_config.yml").write_text(yaml.safe_dump(config))
    toc = {"format": "jb-book", "root": "intro", "chapters": [{"file": "nb"}, {"file": "ch/nb2"}]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    (root / "intro.md").write_text("# Intro\n\nA tiny book.\n")
    write_files(
        root,
        {
            "tinypkg/__init__.py": "VALUE = 1\n",
            "tools/helper.py": "HELP = 1\n",
            "data/v.txt": "1\n",
        },
    )
    count = "with open('{}', 'a') as f:\n    f.write('run\\n')"  # counts executions
    show = "import tinypkg\nprint(f'value={tinypkg.VALUE}')"
    write_notebook(root / "nb.ipynb", count.format("runs.txt"), show)
    (root / "ch").mkdir()
    write_notebook(
        root / "ch" / "nb2.ipynb",
        count.format("../runs2.txt"),
        'import sys\nfrom pathlib import Path\nsys.path[:0] = ["../tools", ".."]\nimport helper\n'
        "import tinypkg\nprint(f'help={helper.HELP} value={tinypkg.VALUE}')\n"
        "print(f'data={Path(\"../data/v.txt\").read_text().strip()}')",
    )


def build(root: Path, env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """``jupyter-book build``; return its exit status and how often each notebook ran so far."""
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root)]
    status = subprocess.run(
        [*command, "-W", "-n", "--keep-going"], cwd=root, capture_output=True, check=False,
        env=env,
    ).returncode
    counts = [root / name for name in ("runs.txt", "runs2.txt")]
    return status, *(p.read_text().count("run") if p.exists() else 0 for p in counts)


def _input_changes() -> dict[str, object]:
    """A tiny book through a package change, a failing notebook, an unchanged rebuild of it, its
    fix, then a change of a script module alone and of a data file alone: each build's exit
    status and run counts, and the two pages' text after it."""
    steps = {}
    with tempfile.TemporaryDirectory(prefix="book_cache_") as tmp:
        root = Path(tmp)
        make_book(root)
        for name, files in [
            ("first", {}),
            ("unchanged", {}),
            ("package", {"tinypkg/__init__.py": "VALUE = 2\n"}),
            ("broken", {"tinypkg/__init__.py": "raise RuntimeError('broken package')\n"}),
            ("broken again", {}),
            ("fixed", {"tinypkg/__init__.py": "VALUE = 3\n"}),
            ("script", {"tools/helper.py": "HELP = 2\n"}),
            ("data", {"data/v.txt": "2\n"}),
        ]:
            write_files(root, files)
            status = build(root, BACKGROUND_ENV)
            pages = [root / "_build" / "html" / f"{n}.html" for n in ("nb", "ch/nb2")]
            steps[name] = (status, *(p.read_text() if p.exists() else "" for p in pages))
    return steps


@pytest.mark.background(job=_input_changes)
def test_every_notebook_runs_again_after_an_input_change_and_a_failure_is_not_cached(
    background,
) -> None:
    """A package change runs both notebooks again; a notebook that fails runs again in the next
    unchanged build (Sphinx's incremental build must not hide a failure); a change of a script
    module or of a data file runs both notebooks again and shows on the page.  Each build costs
    seconds, so one book goes through all of it."""
    assert background["first"][0] == (0, 1, 1)
    assert background["unchanged"][0] == (0, 1, 1)  # nothing changed: outputs from the cache
    counts, nb, nb2 = background["package"]
    assert counts == (0, 2, 2)  # both notebooks import the package
    assert "value=2" in nb and "value=2" in nb2
    (status, *runs), _, _ = background["broken"]
    assert (status != 0, runs) == (True, [3, 3])
    (status, *runs), _, _ = background["broken again"]
    assert (status != 0, runs) == (True, [4, 4])  # a failed notebook is not cached
    counts, nb, _ = background["fixed"]
    assert counts == (0, 5, 5) and "value=3" in nb
    counts, _, nb2 = background["script"]
    assert counts == (0, 6, 6) and "help=2 value=3" in nb2
    counts, _, nb2 = background["data"]
    assert counts == (0, 7, 7) and "data=2" in nb2


def test_unchanged_rebuild_of_numbered_parts_rewrites_no_page(tmp_path: Path) -> None:
    """With phases numbered from 0 (course_numbering) across parts, a rebuild with nothing
    changed writes no HTML page again (it used to rewrite every numbered page)."""
    config = {
        "title": "numbered",
        "only_build_toc_files": True,
        "exclude_patterns": ["_build"],
        "execute": {"execute_notebooks": "off"},
        "html": {"use_multitoc_numbering": True},
        "sphinx": {"local_extensions": {"course_numbering": str(EXTENSIONS)}},
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
    assert build(tmp_path)[0] == 0
    html = tmp_path / "_build" / "html"
    text = (html / "01_b" / "02_y.html").read_text()
    assert re.search(r'<span class="section-number">1\.2\. </span>01_b 02_y', text), text[-3000:]
    written = {p: p.stat().st_mtime_ns for p in html.rglob("*.html")}
    assert build(tmp_path)[0] == 0
    rewritten = [str(p.relative_to(html)) for p, t in written.items() if p.stat().st_mtime_ns != t]
    assert rewritten == [], rewritten
    # a real change of numbering is still written: a chapter inserted before 01_x
    (tmp_path / "01_b" / "00_new.md").write_text("# 01_b new\n")
    parts[1]["chapters"][0]["sections"].insert(0, {"file": "01_b/00_new"})
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    assert build(tmp_path)[0] == 0
    text = (html / "01_b" / "02_y.html").read_text()
    assert re.search(r'<span class="section-number">1\.3\. </span>01_b 02_y', text)


def test_the_book_build_uses_the_cache_rule() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert not config["execute"].get("cache"), "the cache must stay inside _build/"
    assert config["sphinx"]["local_extensions"]["build_cache"] == "book/_ext"
    assert all((ROOT / name).exists() for name in build_cache.INPUTS)
