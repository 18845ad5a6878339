"""Browser test of the built website, in headless Chromium, with no internet.

The book is built once per session from the notebooks that ``test_notebooks.py`` executed (copied
with the other sources into ``_build/test_src/``, built with ``execute_notebooks: "off"``), served
on 127.0.0.1 and opened in Debian's Chromium driven by Playwright.  Every request that leaves
127.0.0.1 is blocked and fails the page, so the site is tested as it works offline.  For every
page of the toc: HTTP 200; math typeset by the vendored MathJax (every ``.math`` element holds
MathJax output, no MathJax error, no raw ``\\(``, ``\\[``, ``$$`` or ``$...$`` left in the text);
every local link points to an existing file and anchor; every image has loaded; no console
error.  One screenshot per phase goes to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import (
    ARTIFACTS,
    NOTEBOOK_OK,
    ROOT,
    STAGE_SECONDS,
    TEST_HTML,
    TEST_SRC,
    TOC_PATH,
    execute_notebook,
    source_of,
    toc_docnames,
    toc_notebooks,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCNAMES = toc_docnames()
#: Folders copied (without notebooks) into the test sources; linked folders are only read.
LINKED_FOLDERS = ("acecourse", "figures", "artifacts")
#: Patterns of the build log that are Sphinx warnings or errors.
PROBLEM = re.compile(r"WARNING|ERROR|CRITICAL|Exception|Traceback")


# --------------------------------------------------------------------------- build
def prepare_sources() -> None:
    """Fill ``_build/test_src`` with the book sources and the executed notebooks."""
    shutil.copytree(ROOT / "book", TEST_SRC / "book", dirs_exist_ok=True)
    folders = {Path(name).parts[0] for name in DOCNAMES if len(Path(name).parts) > 1}
    ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
    for folder in sorted(folders - {"book"}):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, TEST_SRC / folder, ignore=ignore, dirs_exist_ok=True)
    for folder in LINKED_FOLDERS:
        link = TEST_SRC / folder
        if (ROOT / folder).is_dir() and not link.exists():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    (TEST_SRC / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copyfile(TOC_PATH, TEST_SRC / "_toc.yml")
    for notebook in toc_notebooks():
        # Normally executed by test_notebooks.py earlier in this session; executed here only when
        # the site test runs alone.  A missing or failed notebook makes the build fail below.
        if notebook not in NOTEBOOK_OK and (ROOT / notebook).is_file():
            with contextlib.suppress(Exception):  # reported by the build below
                execute_notebook(notebook)


@pytest.fixture(scope="session")
def site() -> Path:
    """Build the book from the executed notebooks; return the HTML folder."""
    start = time.perf_counter()
    prepare_sources()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "book_build.log"
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(TEST_SRC), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=TEST_SRC, check=False)
    log_path.write_text(result.stdout + result.stderr)
    STAGE_SECONDS["book build"] += time.perf_counter() - start
    print(f"book build: {time.perf_counter() - start:.1f} s (log: {log_path})")
    if result.returncode != 0 or not (TEST_HTML / "index.html").is_file():
        lines = (result.stdout + result.stderr).splitlines()
        problems = [line for line in lines if PROBLEM.search(line)] or lines[-30:]
        pytest.fail(
            f"jupyter-book build failed (exit {result.returncode}); full log in {log_path}:\n"
            + "\n".join(problems[:60]),
            pytrace=False,
        )
    return TEST_HTML


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def server(site: Path):
    """Serve the built site on 127.0.0.1 (a free port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser_context(server: str):
    """Headless Debian Chromium with a fresh profile, driven by Playwright."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (scripts/setup_env.sh --test)"
        )
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="acecourse-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- page checks
MATH_CHECK = r"""
() => {
  const maths = [...document.querySelectorAll('.math')];
  const untypeset = maths.filter(e => !e.querySelector('mjx-container'))
                         .map(e => e.textContent.trim().slice(0, 80));
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
                   .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120));
  const root = (document.querySelector('main') || document.body).cloneNode(true);
  root.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
      .forEach(e => e.remove());
  const text = root.textContent;
  const raw = [];
  for (const token of ['\\(', '\\)', '\\[', '\\]', '$$']) {
    const i = text.indexOf(token);
    if (i >= 0) raw.push(text.slice(Math.max(0, i - 40), i + 40).replace(/\s+/g, ' '));
  }
  const dollar = text.match(/\$[^\s$][^$\n]{0,200}?\$/);
  if (dollar) raw.push(dollar[0]);
  return {n_math: maths.length, n_typeset: document.querySelectorAll('mjx-container').length,
          untypeset, errors, raw};
}
"""

IMAGES_CHECK = r"""
async () => {
  const images = [...document.images];
  await Promise.all(images.map(img => {
    img.loading = 'eager';
    if (img.complete) return null;
    return new Promise(done => {
      img.addEventListener('load', done); img.addEventListener('error', done);
      setTimeout(done, 15000);
    });
  }));
  return images.filter(img => !(img.naturalWidth > 0)).map(img => img.currentSrc || img.src);
}
"""


@functools.cache
def _anchors(path: Path) -> frozenset[str]:
    text = path.read_text(errors="replace")
    return frozenset(re.findall(r'\bid="([^"]+)"', text))


def broken_links(hrefs: list[str], base: str, html_dir: Path) -> list[str]:
    """Local links whose file (or anchor in that file) does not exist."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue  # external (not followed: the test runs offline) or another scheme
        parts = urlsplit(href)
        target = html_dir / unquote(parts.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no file {target.relative_to(html_dir)})")
        elif (
            parts.fragment
            and target.suffix == ".html"
            and unquote(parts.fragment) not in _anchors(target)
        ):
            broken.append(f"{href} (no anchor #{parts.fragment})")
    return broken


def screenshot_pages() -> dict[str, str]:
    """For each phase folder, the page to photograph: its first chapter, else its index."""
    chosen: dict[str, str] = {}
    for name in DOCNAMES:
        folder = Path(name).parts[0]
        if not re.match(r"\d\d_", folder):
            continue
        source = source_of(name)
        if folder not in chosen or (
            chosen[folder].endswith("/index") and source is not None and source.suffix == ".ipynb"
        ):
            chosen[folder] = name
    return {name: folder for folder, name in chosen.items()}


SCREENSHOT_OF = screenshot_pages()


def check_page(context, base: str, html_dir: Path, docname: str) -> list[str]:
    """Open one page; return the list of problems found (empty when the page is fine)."""
    problems: list[str] = []
    external: list[str] = []
    page = context.new_page()

    def route(route):
        url = route.request.url
        if url.startswith((base, "data:", "blob:", "about:")):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"),
    )
    try:
        response = page.goto(base + docname + ".html", wait_until="load", timeout=60_000)
        if response is None or response.status != 200:
            problems.append(f"HTTP {response.status if response else 'no response'} for the page")
            return problems
        math = page.evaluate(MATH_CHECK)
        if math["n_math"]:
            try:
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                    timeout=30_000,
                )
                page.evaluate("() => MathJax.startup.promise.then(() => true)")
            except Exception as error:  # noqa: BLE001
                problems.append(f"MathJax did not start: {error}")
            math = page.evaluate(MATH_CHECK)
            if math["untypeset"]:
                problems.append(f"math not typeset: {math['untypeset'][:5]}")
            if math["n_typeset"] < math["n_math"]:
                problems.append(f"{math['n_typeset']} MathJax outputs for {math['n_math']} maths")
        if math["errors"]:
            problems.append(f"MathJax errors: {math['errors'][:5]}")
        if math["raw"]:
            problems.append(f"raw TeX in the rendered text: {math['raw'][:5]}")
        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        problems += [f"broken link: {b}" for b in broken_links(hrefs, base, html_dir)]
        problems += [f"image not loaded: {src}" for src in page.evaluate(IMAGES_CHECK)]
        if docname in SCREENSHOT_OF:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{SCREENSHOT_OF[docname]}.png"))
        page.wait_for_timeout(200)  # let late console messages arrive
    finally:
        page.close()
    problems += [f"request outside 127.0.0.1 (the site must work offline): {u}" for u in external]
    return problems


# --------------------------------------------------------------------------- tests
def test_book_builds_from_executed_notebooks(site: Path) -> None:
    for docname in DOCNAMES:
        assert (site / f"{docname}.html").is_file(), f"{docname}.html missing from the build"
    assert (site / "_static" / "mathjax" / "tex-svg-full.js").is_file(), "vendored MathJax missing"


def test_mathjax_is_served_locally(site: Path) -> None:
    """Pages load MathJax from the site's own _static folder, never from a CDN."""
    pages_with_math = 0
    for docname in DOCNAMES:
        html = (site / f"{docname}.html").read_text()
        scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html, flags=re.IGNORECASE)
        assert all("_static/mathjax/tex-svg-full.js" in s for s in scripts), (docname, scripts)
        pages_with_math += bool(scripts)
    assert pages_with_math > 0, "no page loads MathJax"


def test_root_redirects(browser_context, server: str) -> None:
    page = browser_context.new_page()
    try:
        response = page.goto(server, wait_until="load")
        assert response is not None and response.status == 200
        root = DOCNAMES[0]
        page.wait_for_url(f"**/{root}.html", timeout=15_000)
    finally:
        page.close()


@pytest.mark.parametrize("docname", DOCNAMES, ids=DOCNAMES)
def test_page(browser_context, server: str, site: Path, docname: str) -> None:
    problems = check_page(browser_context, server, site, docname)
    assert not problems, f"{docname}.html:\n" + "\n".join(problems)
