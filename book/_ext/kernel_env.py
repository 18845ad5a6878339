"""Environment of the notebook kernels that execute the chapters for the website.

One place for two settings, used by the book build (this file is a Sphinx extension: its
``setup`` puts them into the environment of the build process, which the kernels that myst-nb
starts inherit) and by the tests (``tests/conftest.py`` passes :func:`kernel_environment` to the
kernels it starts):

``ACECOURSE_BOOK_BUILD=1``
    Tells code in a notebook that it runs for the website: the chapters' setup cell installs and
    downloads nothing, and :mod:`acecourse.interactive` writes the website's HTML output.
``PYTHONWARNINGS``
    Hides known warnings of third-party libraries that say nothing to a reader and would put the
    build machine's paths on the page (:data:`WARNING_FILTERS`; each entry names the library
    and why it is not ours to fix).  Python reads the variable at interpreter start-up, before
    any import, which is what catches warnings raised while a library is imported; a filter
    installed by ``import acecourse`` would come too late for them.  Filters match a warning by
    category and the start of its message only, so every other warning still shows, and the
    site test fails on any warning that reaches a page.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: ``action:message-start:category`` entries (Python's ``-W`` syntax, no ``:`` or ``,`` inside).
WARNING_FILTERS = (
    # torch (2.13) when e3nn 0.4.4 and mace-torch compile their modules with TorchScript
    # (instance attributes annotated in __init__): raised inside torch.jit, attributed to
    # Python's ast.py, on every model construction.
    "ignore:The TorchScript type system doesn't support instance-level annotations:UserWarning",
    # tqdm.auto in a kernel without ipywidgets falls back to text progress bars and says so.
    "ignore:IProgress not found",
)


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
