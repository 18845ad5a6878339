"""The one reader of the book's table of contents (``_toc.yml``), for the scripts and tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def toc_files(toc: Path) -> list[str]:
    """Every ``file`` entry of a Jupyter Book table of contents (root first), in reading order,
    as written there (with or without a suffix)."""
    data = yaml.safe_load(toc.read_text())
    names = [data["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in data.get("parts", []):
        walk(part.get("chapters", []))
    walk(data.get("chapters", []))
    return names


def toc_notebooks(root: Path, toc: Path) -> list[Path]:
    """The existing ``.ipynb`` files of a Jupyter Book table of contents, in reading order."""
    notebooks = []
    for name in toc_files(toc):
        path = root / name
        path = path if path.suffix == ".ipynb" else path.with_name(path.name + ".ipynb")
        if path.is_file():
            notebooks.append(path)
    return notebooks
