"""Sphinx extension: a notebook downloaded from the site installs the commit the site shows.

Every chapter's hidden setup cell (``scripts/setup_cell.py``) names the refs from which it clones
the course outside a clone, tried in order; in the committed notebooks that is the branch of
``_config.yml``, the same branch the Colab and Binder buttons open.  The site's download button
gives the copy of the notebook in ``_sources/``, which would then install whatever the branch
holds later.  At the end of an HTML build this extension puts the commit the site was built from
(``$BOOK_SOURCE_COMMIT``, else ``git rev-parse HEAD`` of the book's folder) first in that list
in every ``_sources/**/*.ipynb``, keeping the branch after it: a learner gets the same code as the
page, and if that commit never reaches the remote, the cell falls back to the branch.

The committed notebooks are not changed.  Without git and without the variable nothing happens.
(The variable is not an ``ACECOURSE_*`` one: those are inputs of every notebook's cached outputs,
see ``scripts/book_cache.py``.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

TAG = "acecourse-setup"
#: The setup cell's refs line (``setup_cell.REFS_LINE``, ``refs = [ref] if ref else [...]``;
#: also the older ``refs = [os.environ[...]] if ... else [...]``); group 2 is the JSON list.
REFS = re.compile(r"^(\s*refs = \[.*\] if .* else )(\[.*\])(\s*)$")
COMMIT = re.compile(r"[0-9a-f]{7,40}")


def build_commit(srcdir: Path) -> str | None:
    """The commit the site is built from, or None if unknown."""
    commit = os.environ.get("BOOK_SOURCE_COMMIT", "").strip()
    if not commit:
        try:
            commit = subprocess.run(
                ["git", "-C", str(srcdir), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    return commit if COMMIT.fullmatch(commit) else None


def with_commit(line: str, commit: str) -> str:
    """The refs line with ``commit`` first and the branch (the list's last entry) after it."""
    match = REFS.match(line)
    if match is None:
        return line
    refs = json.loads(match.group(2))
    branch = [refs[-1]] if refs and refs[-1] != commit else []
    return f"{match.group(1)}{json.dumps([commit, *branch])}{match.group(3)}"


def pin_notebook(path: Path, commit: str) -> bool:
    """Rewrite the refs line of the setup cell of the notebook at ``path``; True if changed."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"]
        lines = source if isinstance(source, list) else source.splitlines(keepends=True)
        new = [with_commit(line, commit) for line in lines]
        if new != lines:
            cell["source"] = new if isinstance(source, list) else "".join(new)
            changed = True
        break  # the first setup cell only
    if changed:
        text = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)
        path.write_text(text + "\n", encoding="utf-8")
    return changed


def _on_build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    commit = build_commit(Path(app.srcdir))
    sources = Path(app.outdir) / "_sources"
    if commit is None or not sources.is_dir():
        return
    for path in sorted(sources.rglob("*.ipynb")):
        pin_notebook(path, commit)


def setup(app):
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
