"""The course's one figure style, and saving figures to ``figures/``.

Every chapter calls :func:`use_course_style` once.  Figures worth keeping as files (for slides,
the README or another page) are written with :func:`save_figure`, so that a file in ``figures/``
is always produced by code in the repository.  Running a chapter by hand refreshes its file in
``figures/``, the repository's (:func:`repository_root`), never a folder inside site-packages; a
book build or a test run writes to ``_build/figures/`` instead (:func:`save_figure`).

Legibility (issue 20): the website's content column is about 740 CSS px wide.  The course style
draws a figure at 100 px per inch (a 7.4 in wide figure fills the column at its natural size), with
9 pt text or more, and exports it at 2x for sharp screens (:data:`EXPORT_SCALE`).  Every PNG that
the course writes (a notebook's figure output in a Jupyter kernel, :func:`save_figure`) carries its
smallest text in a PNG text chunk (:data:`TEXT_PX_KEY`: the font size of its smallest visible
text, in pixels of that image); the site test divides it by the image's natural width and
multiplies it by the width the browser renders, and fails below 9 CSS px.
"""

from __future__ import annotations

import base64
import importlib
import os
import struct
import zlib
from io import BytesIO
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt


def _is_repository(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "acecourse").is_dir()


def repository_root(package_file: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The course repository this code works in, or None (then ``figures/`` is in the working
    directory).

    The folder above the package if it is a clone (an editable install), else the nearest folder
    at or above ``cwd`` (default: the working directory) that is one: for a package installed into
    site-packages (Colab, where the setup cell clones the repository and installs the package
    from the clone), the clone that holds the working directory.
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

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
"""Line colours: Okabe and Ito's colour-blind-safe set without its yellow (faint on white);
matplotlib's colour cycle (``C0``-``C5``) is the first six."""


#: CSS px per inch at which a figure is shown at its natural size (7.4 in = the 740 px column).
DISPLAY_DPI = 100
#: Pixels of the exported PNG per CSS px (2x: sharp on high-density screens).
EXPORT_SCALE = 2
#: PNG text chunk holding the font size of the image's smallest visible text, in image pixels.
TEXT_PX_KEY = "acecourse:smallest-text-px"


def smallest_text_points(fig: plt.Figure) -> float | None:
    """The font size (pt) of the smallest visible, non-empty text of a drawn figure, or None.

    Texts outside the figure (e.g. tick labels beyond the view limits) do not count.  Call it
    after the figure was drawn (tick labels get their text when drawn).
    """
    renderer = fig.canvas.get_renderer()
    sizes = []
    for text in fig.findobj(mpl.text.Text):
        if not (text.get_visible() and text.get_text().strip()):
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        try:
            extent = text.get_window_extent(renderer)
        except (RuntimeError, ValueError):  # e.g. a text without a renderer-friendly position
            continue
        if extent.width > 0 and extent.overlaps(fig.bbox):
            sizes.append(float(text.get_fontsize()))
    return min(sizes) if sizes else None


def _with_text_chunk(png: bytes, key: str, value: str) -> bytes:
    """``png`` with a ``tEXt`` chunk ``key=value`` inserted before its ``IEND`` chunk."""
    data = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + data) & 0xFFFFFFFF)
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def figure_png(fig: plt.Figure, dpi: float | None = None) -> bytes:
    """The PNG of ``fig`` (tight bounding box, at ``dpi``, default the figure's dpi times
    :data:`EXPORT_SCALE`) with its smallest text in pixels of the image (:data:`TEXT_PX_KEY`)."""
    dpi = float(dpi or fig.dpi * EXPORT_SCALE)
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    png = buffer.getvalue()
    points = smallest_text_points(fig)
    if points is not None:
        png = _with_text_chunk(png, TEXT_PX_KEY, f"{points / 72 * dpi:.2f}")
    return png


def png_text_chunks(png: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks of a PNG file's bytes, as a dict."""
    chunks, position = {}, 8
    while position + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[position : position + 8])
        if kind == b"tEXt":
            key, _, value = png[position + 8 : position + 8 + length].partition(b"\0")
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        if kind == b"IEND":
            break
        position += 12 + length
    return chunks


def _inline_png(fig: plt.Figure):
    """IPython's PNG formatter for figures: 2x pixels, shown at the figure's size."""
    if not fig.axes and not fig.lines:
        return None
    png = figure_png(fig)
    width, height = struct.unpack(">II", png[16:24])
    shown = {"width": width // EXPORT_SCALE, "height": height // EXPORT_SCALE}
    return base64.b64encode(png).decode("ascii"), shown


def _use_course_png_in_ipython() -> None:
    """In an IPython kernel with the inline backend, show figures through :func:`_inline_png`."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or "inline" not in str(mpl.rcParams._get("backend")).lower():
        return
    # Importing the inline backend configures IPython's figure formats (once); ours replace its
    # PNG formatter afterwards, so that the order of the imports does not matter.
    importlib.import_module("matplotlib_inline.backend_inline")
    formatters = shell.display_formatter.formatters
    for mime in ("image/svg+xml", "image/jpeg", "application/pdf"):
        formatters[mime].pop(plt.Figure, None)
    formatters["image/png"].for_type(plt.Figure, _inline_png)


def use_course_style() -> None:
    """Apply the course's matplotlib style (font sizes, grid, colour cycle, dpi).

    Figures are drawn at :data:`DISPLAY_DPI` and exported at :data:`EXPORT_SCALE` times that; in
    a Jupyter kernel every figure output carries its smallest text (see the module docstring).
    """
    mpl.rcParams.update(
        {
            "figure.dpi": DISPLAY_DPI,
            "savefig.dpi": DISPLAY_DPI * EXPORT_SCALE,
            "figure.figsize": (6.4, 4.0),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "xtick.labelsize": 9,
            "ytick.labelsize": 9,
            "legend.fontsize": 9,
            "legend.title_fontsize": 9,
            "figure.titlesize": 11,
            "legend.frameon": False,
            "axes.prop_cycle": mpl.cycler(color=list(OKABE_ITO[:6])),
        }
    )
    _use_course_png_in_ipython()


def save_figure(fig: plt.Figure, name: str, directory: Path | None = None) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` (creating the folder) and return the path.

    ``directory`` defaults to ``figures/``, or to ``_build/figures/`` during a book build or a test
    run (``ACECOURSE_BOOK_BUILD`` or ``ACECOURSE_CI`` set), which must not modify tracked files.
    """
    if "/" in name or name.endswith(".png"):
        raise ValueError(f"give a bare figure name without folder or extension, got {name!r}")
    building = os.environ.get("ACECOURSE_BOOK_BUILD") or os.environ.get("ACECOURSE_CI")
    target = Path(directory or (BUILD_FIGURES_DIR if building else FIGURES_DIR))
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    dpi = mpl.rcParams["savefig.dpi"]
    path.write_bytes(figure_png(fig, dpi=fig.dpi if dpi == "figure" else dpi))
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


def show_code(function) -> None:
    """Print a function's source (decorators and signature too) without its docstring."""
    import ast
    import inspect
    import textwrap

    lines = inspect.getsource(function).splitlines()
    docstring = ast.parse(textwrap.dedent("\n".join(lines))).body[0].body[0]
    assert isinstance(docstring, ast.Expr)  # the first statement is the docstring
    print("\n".join(lines[: docstring.lineno - 1] + lines[docstring.end_lineno :]))
