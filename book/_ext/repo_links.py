"""Sphinx extension: the role ``{repo}`path``` links to a file of the course's repository.

Pages name the records behind their numbers, e.g. ``{repo}`artifacts/phase01/README.md```; on
the website that is a link to the file on the repository's site.  The address is derived from
``_config.yml``'s ``repository`` (``url`` and ``branch``, which Jupyter Book hands to the theme as
``repository_url`` and ``repository_branch``), like every other link to the repository, so a fork
that changes them links to its own files.  Built on ``sphinx.ext.extlinks``.
"""

from __future__ import annotations


def _add_role(app, config) -> None:
    options = config.html_theme_options
    url, branch = options["repository_url"], options.get("repository_branch", "main")
    config.extlinks["repo"] = (f"{url.rstrip('/')}/blob/{branch}/%s", "%s")


def setup(app):
    app.setup_extension("sphinx.ext.extlinks")
    app.connect("config-inited", _add_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
