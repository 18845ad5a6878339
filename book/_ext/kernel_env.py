"""Environment of the notebook kernels that execute the chapters for the website.

One place for two settings, used by the book build (this file is a Sphinx extension: its
``setup`` puts them into the environment of the build process, which the kernels that myst-nb
starts inherit) and by the tests (``tests/conftest.py`` passes :func:`kernel_environment` to the
kernels it starts):

``ACECOURSE_BOOK_BUILD=1``
    Tells code in a notebook that it runs for the website: :mod:`acecourse.interactive` writes
    the website's HTML output.
``PYTHONWARNINGS``
    Passed on unchanged, with no filter of the course's own (:data:`WARNING_FILTERS` is empty):
    the dependencies' warnings that a learner cannot act on are filtered where the course imports
    them, by ``import acecourse`` (:mod:`acecourse._warnings`), so that a downloaded chapter is as
    clean as the website.  The site test fails on any warning that reaches a page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: ``action:message-start:category`` entries (Python's ``-W`` syntax) added to ``PYTHONWARNINGS``
#: of the website's kernels; none: the course filters its dependencies' noise in the package.
WARNING_FILTERS: tuple[str, ...] = ()


#: Variables a parent process may carry only because it imported mace-torch itself (mace-torch sets
#: ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` at import): a kernel that inherits it makes e3nn warn, with
#: the machine's path, when e3nn loads its constants.  The pytest session that runs the unit tests
#: before the notebooks is such a parent.
PROCESS_LOCAL = ("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD",)


def kernel_process_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment for a website kernel: ``base`` (default ``os.environ``) without
    :data:`PROCESS_LOCAL`, plus :func:`kernel_environment`."""
    base = os.environ if base is None else base
    kept = {k: v for k, v in base.items() if k not in PROCESS_LOCAL}
    return {**kept, **kernel_environment(base)}


def kernel_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to ``base`` (default ``os.environ``) for a website kernel.

    An existing ``PYTHONWARNINGS`` is kept; the course's filters come after it, so that they
    take precedence for the warnings they name (Python gives the last ``-W`` entry priority).
    """
    base = os.environ if base is None else base
    existing = [entry for entry in base.get("PYTHONWARNINGS", "").split(",") if entry]
    filters = existing + [f for f in WARNING_FILTERS if f not in existing]
    return {"ACECOURSE_BOOK_BUILD": "1", "PYTHONWARNINGS": ",".join(filters)}


def setup(app):
    for name in PROCESS_LOCAL:
        os.environ.pop(name, None)
    os.environ.update(kernel_environment())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
