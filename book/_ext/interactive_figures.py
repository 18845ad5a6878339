"""Sphinx extension: serve plotly.js from the site itself for the course's interactive figures.

The figures of :mod:`acecourse.interactive` are ``<div class="acecourse-interactive">`` outputs
whose script draws with ``window.Plotly`` and carries no copy of plotly.js.  This extension

* copies ``plotly.min.js`` of the installed plotly package (the version that made the figures'
  JSON, pinned in ``requirements.txt``) to the site's ``_static/plotly.min.js``, and
* loads it, with a plain ``<script>`` in the page head, on exactly the pages that contain such a
  figure (the 4.8 MB script is not parsed on the other pages).

No CDN is involved: the site works offline, as it does for MathJax.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: CSS class of a figure's container (``acecourse.interactive.CSS_CLASS``).
MARKER = 'class="acecourse-interactive'
STATIC_NAME = "plotly.min.js"


def plotly_js() -> Path:
    """Path of ``plotly.min.js`` inside the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / STATIC_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is the plotly package installed completely?")
    return path


def _add_script(app, pagename, templatename, context, doctree) -> None:
    if MARKER in context.get("body", ""):
        app.add_js_file(STATIC_NAME)


def _copy_script(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / STATIC_NAME
    source = plotly_js()
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def setup(app):
    plotly_js()  # fail at start-up, not after an hour of notebook execution
    app.connect("html-page-context", _add_script)
    app.connect("build-finished", _copy_script)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
