"""Sphinx extension: a notebook downloaded from the site installs the commit the site shows.

Every chapter's hidden setup cell (``scripts/setup_cell.py``) pip-installs the course, outside
the course's environment, from the repository at one ref; in the committed notebooks that is the
branch of ``_config.yml``, the same branch the Colab and Binder buttons open.  The site's
download button gives the copy of the notebook in ``_sources/``, which would then install
whatever the branch holds later.  At the end of an HTML build this extension replaces that ref,
in every ``_sources/**/*.ipynb``, with the commit the site was built from
(``$BOOK_SOURCE_COMMIT``, else ``HEAD``, resolved by ``git rev-parse`` in the book's folder),
abbreviated to the most characters that keep the line within 88 (at least 7): a learner gets
the same code as the page.  There is no fallback to the branch: if that commit never reaches
the remote, pip fails.

The committed notebooks are not changed.  Without git, and without a full 40-character hash in
the variable, nothing happens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

TAG = "acecourse-setup"
#: The setup cell's install line (``setup_cell.TEMPLATE``); group 2 is the ref.
REF = re.compile(r"^(\s*%pip install -qq git\+\S+@)(\S+?)(\s*)$")
WIDTH = 88  # the notebooks' longest code line
COMMIT = re.compile(r"[0-9a-f]{40}")


def build_commit(srcdir: Path) -> str | None:
    """The full hash of the commit the site is built from, or None if unknown."""
    commit = os.environ.get("BOOK_SOURCE_COMMIT", "").strip()
    try:
        commit = subprocess.run(
            ["git", "-C", str(srcdir), "rev-parse", "--verify", f"{commit or 'HEAD'}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass  # no git, or a commit this clone lacks: a full hash in the variable still counts
    return commit if COMMIT.fullmatch(commit) else None


def with_commit(line: str, commit: str) -> str:
    """The install line with ``commit`` (abbreviated to fit) as the ref; other lines unchanged."""
    match = REF.match(line)
    if match is None:
        return line
    keep = max(7, WIDTH - len(match.group(1)))  # 7: git's default abbreviation
    return f"{match.group(1)}{commit[:keep]}{match.group(3)}"


def pin_notebook(path: Path, commit: str) -> bool:
    """Rewrite the ref line of the setup cell of the notebook at ``path``; True if changed."""
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
