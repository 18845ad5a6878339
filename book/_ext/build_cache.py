"""Sphinx extension: every build drops the cached outputs of notebooks whose inputs changed.

``_config.yml`` sets ``execute_notebooks: cache``: myst-nb keeps each executed notebook in
jupyter-cache, keyed on the notebook's code cells only, and Sphinx re-reads only the pages whose
source changed.  Neither sees what a notebook imports or reads.  This extension runs the
invalidation of ``scripts/book_cache.py`` when Sphinx starts (``config-inited``, before it loads
its saved environment), so that every way of building the book, ``bash scripts/build_book.sh``
as well as a plain ``jupyter-book build .``, re-executes a notebook whose ``acecourse`` modules,
imported ``../scripts`` modules, named files, ``artifacts/``, kernel settings, installed packages
or Python changed.  At the end (``build-finished``) it records whether the build succeeded
without a warning; after any other outcome the next build re-reads every page, so that a
warning or a failed notebook is reported again instead of hidden by the incremental build.

It does nothing unless myst-nb executes notebooks in ``cache`` mode (the tests' site build uses
``off``).  Settings (``sphinx.config`` in ``_config.yml``; the defaults are the course's):

``book_cache_package``
    The package the notebooks import (default: ``scripts/book_cache.py``'s ``PACKAGE``,
    ``acecourse``).
``book_cache_inputs``
    Files and folders, relative to the book's folder, that every notebook depends on (default:
    ``scripts/book_cache.py``'s ``INPUTS``).

``scripts/book_cache.py`` is imported only when the extension is active.
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _book_cache():
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    import book_cache

    return book_cache


def cache_dir(app) -> Path:
    """myst-nb's jupyter-cache folder: ``nb_execution_cache_path``, else ``<outdir>/../.jupyter_cache``
    (the rule of ``myst_nb.sphinx_ext.create_mystnb_config``)."""
    configured = app.config.nb_execution_cache_path
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else Path(app.srcdir) / path
    return Path(app.outdir).parent / ".jupyter_cache"


def _active(app) -> bool:
    return app.config.nb_execution_mode == "cache"


def _toc(app) -> Path:
    path = Path(str(app.config.external_toc_path))
    return path if path.is_absolute() else Path(app.srcdir) / path


def _on_config_inited(app, config) -> None:
    if not _active(app):
        return
    from sphinx.util import logging

    book_cache = _book_cache()
    root = Path(app.srcdir).resolve()
    notebooks = book_cache.toc_notebooks(root, _toc(app))
    package = config.book_cache_package or book_cache.PACKAGE
    inputs = book_cache.INPUTS if config.book_cache_inputs is None else config.book_cache_inputs
    changed = book_cache.invalidate(
        root, notebooks, package, list(inputs), cache_dir(app), Path(app.doctreedir)
    )
    logger = logging.getLogger(__name__)
    if changed:
        logger.info(
            f"build_cache: inputs changed since the cached run of {len(changed)} notebooks:"
        )
        for rel in changed:
            logger.info(f"  {rel}")


def _on_build_finished(app, exception) -> None:
    if not _active(app):
        return
    ok = exception is None and not getattr(app, "_warncount", 0)
    _book_cache().finish(cache_dir(app), ok)


def setup(app):
    app.add_config_value("book_cache_package", None, "env")
    app.add_config_value("book_cache_inputs", None, "env")
    # after myst-nb's own config-inited handlers (priority 500), before anything reads the env
    app.connect("config-inited", _on_config_inited, priority=900)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
