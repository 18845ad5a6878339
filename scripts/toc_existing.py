"""Print a copy of ``_toc.yml`` that keeps only the entries whose file exists.

Development aid while chapters are being written: the committed ``_toc.yml`` lists every planned
chapter, and the notebook test fails on a missing one.  To test the pipeline on what exists::

    python scripts/toc_existing.py > /tmp/toc_existing.yml
    ACECOURSE_TOC=/tmp/toc_existing.yml bash scripts/run_tests.sh

Entries that are dropped are listed on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = (".ipynb", ".md", ".rst", ".py")


def exists(docname: str, root: Path = ROOT) -> bool:
    """True if ``docname`` (a toc ``file`` entry, suffix optional) names an existing file."""
    path = root / docname
    if path.suffix in SUFFIXES:
        return path.is_file()
    return any(path.with_name(path.name + suffix).is_file() for suffix in SUFFIXES)


def prune(entries: list[dict], dropped: list[str], root: Path = ROOT) -> list[dict]:
    """Return the entries whose file exists; an entry's existing sections replace a missing entry."""
    kept = []
    for entry in entries:
        entry = dict(entry)
        sections = prune(entry.get("sections", []), dropped, root)
        if "sections" in entry:
            if sections:
                entry["sections"] = sections
            else:
                del entry["sections"]
        if "file" in entry and not exists(entry["file"], root):
            dropped.append(entry["file"])
            kept.extend(sections)
            continue
        kept.append(entry)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("toc", nargs="?", default=str(ROOT / "_toc.yml"))
    args = parser.parse_args()
    toc = yaml.safe_load(Path(args.toc).read_text())
    dropped: list[str] = []
    parts = []
    for part in toc.get("parts", []):
        chapters = prune(part.get("chapters", []), dropped)
        if chapters:
            parts.append({**part, "chapters": chapters})
    toc["parts"] = parts
    if "chapters" in toc:
        toc["chapters"] = prune(toc["chapters"], dropped)
    for name in dropped:
        print(f"toc_existing: dropped missing {name}", file=sys.stderr)
    yaml.safe_dump(toc, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
