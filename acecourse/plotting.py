"""The course's one figure style, and saving figures to ``figures/``.

Every chapter calls :func:`use_course_style` once.  Figures worth keeping as files (for slides,
the README or another page) are written with :func:`save_figure`, so that a file in ``figures/``
is always produced by code in the repository.  Running a chapter by hand refreshes its file in
``figures/``; a book build or a test run (``ACECOURSE_BOOK_BUILD`` or ``ACECOURSE_CI`` set) writes
to ``_build/figures/`` instead, so that building the website never modifies tracked files.

``figures/`` is the repository's (:func:`repository_root`): the folder above the package in a
clone with ``pip install -e .``; for a package installed into site-packages (Colab, where the
chapter's setup cell clones the repository and installs the package from the clone) the clone
that holds the working directory; with no clone anywhere, ``figures/`` in the working directory,
never a folder inside site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt


def _is_repository(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "acecourse").is_dir()


def repository_root(package_file: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The course repository this code works in, or None.

    The folder above the package if it is a clone (an editable install), else the nearest folder
    at or above ``cwd`` (default: the working directory) that is one.
    """
    package_parent = Path(package_file or __file__).resolve().parents[1]
    if _is_repository(package_parent):
        return package_parent
    start = Path(cwd or Path.cwd()).resolve()
    return next((d for d in (start, *start.parents) if _is_repository(d)), None)


_ROOT = repository_root() or Path.cwd().resolve()
FIGURES_DIR = _ROOT / "figures"
BUILD_FIGURES_DIR = _ROOT / "_build" / "figures"

COLORS = {"C": "#4d4d4d", "H": "#1f77b4", "O": "#d62728"}
"""Element colours used in every per-element plot."""


def use_course_style() -> None:
    """Apply the course's matplotlib style (font sizes, grid, colour cycle, dpi)."""
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.figsize": (6.0, 4.0),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": False,
            "axes.prop_cycle": mpl.cycler(
                color=["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
            ),
        }
    )


def save_figure(fig: plt.Figure, name: str, directory: Path | None = None) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` (creating the folder) and return the path.

    ``directory`` defaults to ``figures/``, or to ``_build/figures/`` during a book build or a test
    run (``ACECOURSE_BOOK_BUILD`` or ``ACECOURSE_CI`` set), which must not modify tracked files.
    """
    if "/" in name or name.endswith(".png"):
        raise ValueError(f"give a bare figure name without folder or extension, got {name!r}")
    if directory is not None:
        target = Path(directory)
    elif os.environ.get("ACECOURSE_BOOK_BUILD") or os.environ.get("ACECOURSE_CI"):
        target = BUILD_FIGURES_DIR
    else:
        target = FIGURES_DIR
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return path


def markdown_table(header, rows) -> str:
    """A Markdown table of ``header`` and ``rows`` (any values, shown with ``str``)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|")  # a literal | would split the column

    lines = ["| " + " | ".join(cell(x) for x in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header, rows) -> None:
    """Display :func:`markdown_table` in a notebook (rendered as a table in the book)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))
