"""The setup cell of every chapter: its one source, and the tool that writes and checks it.

Every notebook of the table of contents starts (as its first code cell) with three lines that
install the course where it is not installed, for example in Google Colab opened from a launch
button or in a notebook downloaded from the site::

    if __import__("importlib.util").util.find_spec("acecourse") is None:  # outside the
        # course's environment (e.g. in Colab) install the course at this page's version
        %pip install -qq git+https://github.com/OWNER/REPO@REF

Everything a chapter reads comes with that install: the package, the rMD17 split it trains on
and the recorded results (``acecourse.ARTIFACTS``), so the chapter runs where it is.  In the
course's own environment (a clone with ``pip install -e .``, CI, the book build, Binder) the
package is importable and the cell does nothing.  The repository and the ref come from
``_config.yml`` (``repository.url``, ``repository.branch``).  A notebook downloaded from the site
names the commit the site was built from instead of the branch (``book/_ext/source_commit.py``
rewrites the ref in the site's copies, abbreviated so that the line stays within 88 characters);
there is no fallback to another ref: a commit that cannot be fetched makes pip fail.

Usage::

    python scripts/setup_cell.py --write    # replace (or insert) the cell in every toc notebook
    python scripts/setup_cell.py --check    # exit 1, naming each notebook whose cell is not current
    python scripts/setup_cell.py --print    # show the cell's text
    python scripts/setup_cell.py --write 01_x/02_y.ipynb       # only the notebooks named

``--write`` replaces the first cell tagged ``acecourse-setup`` in place (same position, same id)
and changes nothing else; a notebook without one gets it before its first code cell.  ``--check``
also reports a setup cell that is not the first code cell, or a second one.  The cell carries the
tags ``remove-cell`` (not shown on the website) and ``acecourse-setup`` (how this tool finds it).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import toc_notebooks

ROOT = Path(__file__).resolve().parents[1]
TAG = "acecourse-setup"
TAGS = ["remove-cell", TAG]
TEMPLATE = """\
if __import__("importlib.util").util.find_spec("acecourse") is None:  # outside the
    # course's environment (e.g. in Colab) install the course at this page's version
    %pip install -qq git+{repo}@{ref}"""


def repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """``(repository.url, repository.branch)`` of the book's ``_config.yml``."""
    repo = yaml.safe_load(config_path.read_text()).get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch")
    if not url or not branch:
        raise ValueError(f"{config_path} needs repository.url and repository.branch")
    return str(url).rstrip("/"), str(branch)


def cell_source(repo: str | None = None, ref: str | None = None) -> str:
    """The setup cell's text (``repo`` and ``ref`` default to ``_config.yml``'s)."""
    if repo is None or ref is None:
        config_repo, config_ref = repository()
        repo, ref = repo or config_repo, ref or config_ref
    return TEMPLATE.format(repo=repo, ref=ref)


def _is_setup(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and TAG in cell.get("metadata", {}).get("tags", [])


def problems(nb: dict, text: str) -> list[str]:
    """What is wrong with a notebook's setup cell, whose text should be ``text``."""
    setups = [i for i, cell in enumerate(nb["cells"]) if _is_setup(cell)]
    if not setups:
        return ["no setup cell (tag acecourse-setup)"]
    found = []
    if len(setups) > 1:
        found.append(f"{len(setups)} setup cells (cells {setups}): keep the first")
    first_code = next(i for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code")
    if setups[0] != first_code:
        found.append(f"the setup cell is cell {setups[0]}, not the first code cell ({first_code})")
    cell = nb["cells"][setups[0]]
    if "".join(cell.get("source", "")) != text:
        found.append("the setup cell's text differs from scripts/setup_cell.py's (run --write)")
    if "remove-cell" not in cell.get("metadata", {}).get("tags", []):
        found.append("the setup cell lacks the tag remove-cell (it would show on the website)")
    if cell.get("outputs") or cell.get("execution_count") is not None:
        found.append("the setup cell has outputs")
    return found


def with_setup_cell(nb: dict, text: str) -> dict:
    """The notebook with its setup cell's text ``text``: the first cell tagged ``acecourse-setup``
    is replaced in place (position and id kept), or the cell is inserted before the first code
    cell.  Nothing else changes.  Returns the same (modified) dict."""
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(TAGS)},
            "outputs": [], "source": text.splitlines(keepends=True)}
    old = next((i for i, c in enumerate(nb["cells"]) if _is_setup(c)), None)
    if old is not None:
        if "id" in nb["cells"][old]:
            cell["id"] = nb["cells"][old]["id"]
        nb["cells"][old] = cell
        return nb
    if nb.get("nbformat", 4) > 4 or nb.get("nbformat_minor", 0) >= 5:
        ids = {c.get("id") for c in nb["cells"]}
        cell["id"] = TAG if TAG not in ids else uuid.uuid4().hex[:8]
    codes = (i for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code")
    nb["cells"].insert(next(codes, len(nb["cells"])), cell)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="replace/insert the cell")
    action.add_argument("--check", action="store_true", help="exit 1 if a cell is not current")
    action.add_argument("--print", action="store_true", help="print the cell's text")
    parser.add_argument("notebooks", nargs="*", type=Path, help="only these (default: all)")
    args = parser.parse_args(argv)
    try:
        text = cell_source()
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.exit(2, f"setup_cell: error: {error}\n")
    if args.print:
        print(text)
        return 0
    root = ROOT
    notebooks = toc_notebooks(root, root / "_toc.yml")
    if args.notebooks:
        named = {path.resolve() for path in args.notebooks}
        if unknown := named - {path.resolve() for path in notebooks}:
            parser.exit(2, f"setup_cell: error: not in the table of contents: {sorted(unknown)}\n")
        notebooks = [path for path in notebooks if path.resolve() in named]
    status = 0
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if args.write:
            before = json.dumps(nb, sort_keys=True)
            if json.dumps(with_setup_cell(nb, text), sort_keys=True) != before:
                dump = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)
                path.write_text(dump + "\n", encoding="utf-8")  # as nbformat writes it
                print(f"wrote the setup cell into {path.relative_to(root)}")
        else:
            for problem in problems(nb, text):
                print(f"{path.relative_to(root)}: {problem}", file=sys.stderr)
                status = 1
    if args.check and status == 0:
        print(f"setup cell current in all {len(notebooks)} notebooks")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
