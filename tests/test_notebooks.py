"""Every notebook of the table of contents executes top to bottom in a clean kernel.

One test per toc notebook (id = its path).  Each notebook runs once per session, with its own
folder as working directory, ``ACECOURSE_CI=1`` and a per-cell timeout; the executed copy is saved
in ``_build/test_src/`` and ``test_site.py`` builds the book from it.  A toc entry whose file is
missing fails.  A notebook's checks are its assertions: a failing ``assert`` fails its test.
"""

from __future__ import annotations

import pytest
from conftest import TOC_PATH, execute_notebook, toc_notebooks

NOTEBOOKS = toc_notebooks()


def test_toc_lists_notebooks():
    assert NOTEBOOKS, f"{TOC_PATH} lists no notebook"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=NOTEBOOKS)
def test_notebook_executes(notebook: str) -> None:
    seconds = execute_notebook(notebook)
    print(f"{notebook}: executed in {seconds:.1f} s")
