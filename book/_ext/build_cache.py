"""Sphinx extension: a build never shows notebook outputs made from older inputs.

``_config.yml`` sets ``execute_notebooks: cache``: myst-nb keeps each executed notebook in
jupyter-cache, keyed on the notebook's code cells only, so a change in the package a notebook
imports, in a script it loads or in an artifact it reads would go unseen.  One rule closes that
gap: the cache is valid for one fingerprint of everything the notebooks run apart from their own
code, the files under ``book_cache_inputs`` (the package, ``scripts/``, ``artifacts/``, the pins,
the kernels' settings), the Python version and the ``ACECOURSE_*`` variables.  When the
fingerprint changes, the whole cache and Sphinx's saved pages are dropped and every notebook runs
again.  After a build that failed or warned, the saved pages are dropped too (the outputs stay
cached), so that its messages come back instead of being hidden by the incremental build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

INPUTS = [
    "acecourse",
    "scripts",
    "artifacts",
    "requirements.txt",
    "pyproject.toml",
    "book/_ext/kernel_env.py",
]
STATE = "build_inputs.json"


def fingerprint(root: Path, inputs: list[str]) -> str:
    """SHA-256 of the input files (path and content), the Python version and ACECOURSE_*."""
    digest = hashlib.sha256(sys.version.encode())
    for name, value in sorted(os.environ.items()):
        if name.startswith("ACECOURSE_"):
            digest.update(f"{name}={value}\n".encode())
    for name in inputs:
        top = root / name
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dir(app) -> Path:
    """myst-nb's jupyter-cache folder (its rule: ``nb_execution_cache_path``, else
    ``<outdir>/../.jupyter_cache``)."""
    configured = app.config.nb_execution_cache_path
    if configured:
        return Path(app.srcdir) / configured
    return Path(app.outdir).parent / ".jupyter_cache"


def _on_config_inited(app, config) -> None:
    if config.nb_execution_mode != "cache":
        return
    from sphinx.util import logging

    cache, state_file = cache_dir(app), Path(app.outdir).parent / STATE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    current = fingerprint(Path(app.srcdir), config.book_cache_inputs)
    if state.get("fingerprint") != current:
        if state:
            logging.getLogger(__name__).info("build_cache: inputs changed, running every notebook")
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(app.doctreedir, ignore_errors=True)
    elif not state.get("ok"):
        shutil.rmtree(app.doctreedir, ignore_errors=True)  # re-read every page
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"fingerprint": current, "ok": False}))


def _on_build_finished(app, exception) -> None:
    state_file = Path(app.outdir).parent / STATE
    if app.config.nb_execution_mode != "cache" or not state_file.is_file():
        return
    state = json.loads(state_file.read_text())
    state["ok"] = exception is None and not getattr(app, "_warncount", 0)
    state_file.write_text(json.dumps(state))


def setup(app):
    app.add_config_value("book_cache_inputs", INPUTS, "env")
    # after myst-nb's own config-inited handlers (priority 500), before anything reads the env
    app.connect("config-inited", _on_config_inited, priority=900)
    app.connect("build-finished", _on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
