"""Shared machinery of the course's test session.

One ``pytest`` session runs, in this order: the unit tests of the package, every notebook of the
table of contents (``test_notebooks.py``, each executed once in a clean kernel), then the browser
test of the site (``test_site.py``), which builds the book from the notebooks executed earlier in
the same session.  The terminal summary prints the wall time of each stage and of each notebook.

Environment
-----------
ACECOURSE_TOC
    Table of contents to test instead of ``_toc.yml`` (development only: a shorter copy of it
    tests a subset of the chapters).
ACECOURSE_CELL_TIMEOUT
    Per-cell timeout of notebook execution in seconds (default 1200).
ACECOURSE_TEST_THREADS
    Threads of torch (and OpenMP, for the processes the tests start) during the unit tests
    (default 1).  Their models are tiny: a second thread gains little, and on a machine whose
    other core is busy the two threads wait on each other (the window and training tests ran
    2-3 times slower with two).  The notebooks run with the machine's default.

Background jobs
---------------
A unit test whose cost is a process of its own (a fresh interpreter that imports torch and mace,
a script) marks it ``@pytest.mark.background(job=job)``: ``job()`` starts when collection ends, in
one background thread, and the test reads its result from the ``background`` fixture.  The
processes use a second core while the unit tests run on one thread; the tests that read a job
run at the end of the unit tests.  A job's processes take ``BACKGROUND_ENV`` (the session's
environment as the jobs start) and a working directory of their own: the unit tests running
meanwhile may change both.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import acecourse  # noqa: F401  (allow-lists slice for e3nn 0.4.4's constants before any test imports e3nn)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from kernel_env import kernel_process_environment  # the book build's kernel settings

sys.path.insert(0, str(ROOT / "scripts"))
from toc import toc_files  # the repository's one toc reader

TOC_PATH = Path(os.environ.get("ACECOURSE_TOC", ROOT / "_toc.yml")).resolve()
BUILD_ROOT = ROOT / "_build"
TEST_SRC = BUILD_ROOT / "test_src"  # book sources with the executed notebooks
TEST_HTML = TEST_SRC / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"
CELL_TIMEOUT = int(os.environ.get("ACECOURSE_CELL_TIMEOUT", "1200"))
UNIT_THREADS = os.environ.get("ACECOURSE_TEST_THREADS", "1")
DOC_SUFFIXES = (".ipynb", ".md")

STAGE_ORDER = {"unit tests": 0, "notebooks": 1, "browser test": 2}
STAGE_SECONDS: dict[str, float] = defaultdict(float)
NOTEBOOK_SECONDS: dict[str, float] = {}
NOTEBOOK_OK: dict[str, bool] = {}
BACKGROUND_JOBS: dict[object, Future] = {}
BACKGROUND_ENV: dict[str, str] = {}  # the environment of the jobs' processes
_POOL: ThreadPoolExecutor | None = None


# --------------------------------------------------------------------------- table of contents
def toc_docnames(toc_path: Path = TOC_PATH) -> list[str]:
    """Every ``file`` entry of a Jupyter Book toc (root first), in reading order, without suffix."""
    names = toc_files(toc_path)
    return [str(Path(n).with_suffix("")) if Path(n).suffix in DOC_SUFFIXES else n for n in names]


def source_of(docname: str) -> Path | None:
    """The existing source file of a toc entry, or None."""
    for suffix in DOC_SUFFIXES:
        path = ROOT / f"{docname}{suffix}"
        if path.is_file():
            return path
    return None


def toc_notebooks(toc_path: Path = TOC_PATH) -> list[str]:
    """Paths (relative to the repository) of the notebooks of the toc.

    An entry whose file does not exist is counted as a notebook, so that its test fails.
    """
    notebooks = []
    for name in toc_docnames(toc_path):
        source = source_of(name)
        if source is None or source.suffix == ".ipynb":
            notebooks.append(f"{name}.ipynb")
    return notebooks


# --------------------------------------------------------------------------- notebook execution
def execute_notebook(relpath: str) -> float:
    """Execute a notebook top to bottom in a fresh kernel and save it under ``TEST_SRC``.

    The kernel's working directory is the notebook's folder and its environment has
    ``ACECOURSE_CI=1`` and the book build's kernel settings (``book/_ext/kernel_env.py``:
    ``ACECOURSE_BOOK_BUILD=1``).  The executed notebook (also a partly
    executed one, on failure) is written to ``_build/test_src/<relpath>`` for the site build.  Returns the wall time in s;
    raises ``nbclient.exceptions.CellExecutionError`` (or a timeout) on failure.
    """
    import nbformat
    from nbclient import NotebookClient

    source = ROOT / relpath
    if not source.is_file():
        NOTEBOOK_OK[relpath] = False
        pytest.fail(f"{relpath} is listed in {TOC_PATH.name} but does not exist", pytrace=False)
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(source.parent)}},
    )
    os.environ["ACECOURSE_CI"] = "1"  # inherited by the kernel
    start = time.perf_counter()
    ok = False
    try:
        client.execute(env=kernel_process_environment())
        ok = True
    finally:
        seconds = time.perf_counter() - start
        NOTEBOOK_SECONDS[relpath] = seconds
        NOTEBOOK_OK[relpath] = ok
        target = TEST_SRC / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
    return seconds


# --------------------------------------------------------------------------- session hooks
def stage_of(item: pytest.Item) -> str:
    name = Path(str(item.fspath)).name
    if name == "test_notebooks.py":
        return "notebooks"
    if name == "test_site.py":
        return "browser test"
    return "unit tests"


def pytest_sessionstart(session: pytest.Session) -> None:
    # Fresh sources for the test build: no executed notebook from an earlier run is reused.
    if TEST_SRC.exists():
        shutil.rmtree(TEST_SRC)
    TEST_SRC.mkdir(parents=True)


def pytest_collection_modifyitems(
    session: pytest.Session, config, items: list[pytest.Item]
) -> None:
    # Unit tests first, then the notebooks, then the site built from them (stable sort); the
    # unit tests that read a background job last, so that the jobs run while the others do.
    items.sort(
        key=lambda item: (STAGE_ORDER[stage_of(item)], bool(item.get_closest_marker("background")))
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    # the selected tests' background jobs (after -k and -m have deselected theirs)
    global _POOL
    marks = [item.get_closest_marker("background") for item in session.items]
    jobs = [m.kwargs["job"] for m in marks if m is not None]
    if jobs and not session.config.option.collectonly:
        _record_default_threads()  # the processes of the jobs are the unit tests' processes
        os.environ["OMP_NUM_THREADS"] = UNIT_THREADS
        BACKGROUND_ENV.update(os.environ)  # not what a test monkeypatches while a job runs
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background")
        for job in dict.fromkeys(jobs):
            BACKGROUND_JOBS[job] = _POOL.submit(job)


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    if _POOL is not None:  # a run that stopped early (-x, Ctrl-C) does not wait for the rest
        _POOL.shutdown(wait=False, cancel_futures=True)


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "background(job=f): f() runs in a background thread from the session's start"
    )


@pytest.fixture
def background(request) -> object:
    """The result of the test's ``background`` job (its exception, if it raised)."""
    return BACKGROUND_JOBS[request.node.get_closest_marker("background").kwargs["job"]].result()


_DEFAULT_THREADS: dict[str, object] = {}


def _record_default_threads() -> None:
    import torch

    if not _DEFAULT_THREADS:
        _DEFAULT_THREADS.update(torch=torch.get_num_threads(),
                                omp=os.environ.get("OMP_NUM_THREADS"))  # fmt: skip


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Unit tests (and their module fixtures) run with ``ACECOURSE_TEST_THREADS`` threads."""
    import torch

    _record_default_threads()
    if stage_of(item) == "unit tests":
        torch.set_num_threads(int(UNIT_THREADS))
        os.environ["OMP_NUM_THREADS"] = UNIT_THREADS
    else:
        torch.set_num_threads(_DEFAULT_THREADS["torch"])
        if _DEFAULT_THREADS["omp"] is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = _DEFAULT_THREADS["omp"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    start = time.perf_counter()
    yield
    STAGE_SECONDS[stage_of(item)] += time.perf_counter() - start


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    tr = terminalreporter
    if NOTEBOOK_SECONDS:
        tr.section("notebook wall times")
        for path, seconds in NOTEBOOK_SECONDS.items():
            status = "ok" if NOTEBOOK_OK.get(path) else "FAILED"
            tr.write_line(f"{seconds:8.1f} s  {status:6s}  {path}")
        tr.write_line(f"{sum(NOTEBOOK_SECONDS.values()):8.1f} s  total")
    tr.section("stage wall times")
    build = STAGE_SECONDS.get("book build", 0.0)
    rows = [
        ("unit tests", STAGE_SECONDS.get("unit tests", 0.0)),
        ("notebooks", STAGE_SECONDS.get("notebooks", 0.0)),
        ("book build", build),
        ("browser test", max(STAGE_SECONDS.get("browser test", 0.0) - build, 0.0)),
    ]
    for name, seconds in rows:
        tr.write_line(f"{seconds:8.1f} s  {name}")


@pytest.fixture
def float64_default():
    """Run a test with torch's default dtype set to float64 (restored afterwards).

    Test modules that check identities to round-off use it for every test:
    ``pytestmark = pytest.mark.usefixtures("float64_default")``.
    """
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def cached_coupling_tensors():
    """Compute each of mace-torch's coupling tensors (``U_matrix_real``) once per session.

    Every mace-torch model builds its symmetric contractions from ``mace.tools.cg.U_matrix_real``,
    most of the time it takes to build one (seconds for l_max = 3, correlation 3).  The tests
    build many models of the same few shapes; this fixture memoises the function by its
    arguments (and the default dtype) and hands out copies, so that the values every model gets
    are those of a fresh call.  ``acecourse.mace.coupling_tensor`` makes the same call.  Stays in
    place for the rest of the session once a module asks for it.
    """
    import importlib

    import torch

    import acecourse.mace  # noqa: F401  (before mace: sets mace's torch.load default first)

    cg = importlib.import_module("mace.tools.cg")
    contraction = importlib.import_module("mace.modules.symmetric_contraction")
    real = cg.U_matrix_real
    memo: dict = {}

    def memoised(irreps_in, irreps_out, correlation, *args, **kwargs):
        key = (str(irreps_in), str(irreps_out), correlation, repr(args),
               repr(sorted(kwargs.items())), torch.get_default_dtype())  # fmt: skip
        if key not in memo:
            memo[key] = real(irreps_in, irreps_out, correlation, *args, **kwargs)
        return [x.clone() if isinstance(x, torch.Tensor) else x for x in memo[key]]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cg, "U_matrix_real", memoised)
        patch.setattr(contraction, "U_matrix_real", memoised)
        yield memo
