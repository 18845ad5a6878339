"""Sphinx extension: drop repeated inline ``<script>`` blocks from each HTML page.

With Sphinx 7.4, sphinx-thebe 0.3.1 (loaded by Jupyter Book 1.x) registers its inline
configuration script, ``const THEBE_JS_URL = ...``, twice, so every page raises
"Identifier 'THEBE_JS_URL' has already been declared" in the browser console.  This extension
keeps the first copy of each script (same file and same inline body) and removes the rest;
the same happens to sphinx-togglebutton's inline selector script.
"""

from __future__ import annotations


def _dedupe(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen = set()
    kept = []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        # an inline script is registered once with filename None and once with "": same script
        key = (getattr(script, "filename", None) or "", attributes.get("body"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
