"""Browser test of the built website, in headless Chromium, with no internet.

The book is built once per session from the notebooks that ``test_notebooks.py`` executed (copied
with the other sources into ``_build/test_src/``, built with ``execute_notebooks: "off"``), served
on 127.0.0.1 and opened in Debian's Chromium driven by Playwright.  Every request that leaves
127.0.0.1 is blocked and fails the page, so the site is tested as it works offline.  For every
page of the toc: HTTP 200; math typeset by the vendored MathJax (every ``.math`` element holds
MathJax output, no MathJax error, no raw ``\\(``, ``\\[``, ``$$`` or ``$...$`` left in the text);
every local link points to an existing file and anchor; every image has loaded; no console
error.  Figures (issue 17): every content image is in a ``<figure>`` with a non-empty
``<figcaption>`` numbered by chapter ("Figure 3.4.2" on chapter 3.4) and has an ``alt`` text that
describes it (not empty, not a file name or hash); the logo, the theme's icons and MathJax's output
are not content images.  Cell outputs show no Python warning and no path of the build machine.
Interactive figures (``acecourse.interactive``): each one on each page is drawn by the site's own
``_static/plotly.min.js`` (a Plotly ``.main-svg`` and a WebGL canvas appear, no console error), and
only pages with such a figure load that script.  Launch buttons: on every notebook page the Colab
and Binder links (and the JupyterHub link when a hub is configured) open that notebook in the
repository named in ``_config.yml``.  The chapters' setup cell does not reach the pages.  One
screenshot per phase, and one of every interactive figure, go to ``test-artifacts/screenshots/``.

The checks cannot pass by finding nothing: what each page must show is counted in its source
(:func:`expected_of`).  Every interactive figure a chapter's code draws is on its page, drawn;
every page of a numbered phase has its chapter number; the page has at least as many content
images as its source promises figures (code cells with ``mystnb.figure`` metadata, ``{figure}``
directives).  No MyST markup is left unrendered in the text (a literal ```` ```{ ```` or
``:::{``, a ``(label)=`` target, a role such as ``{numref}``), as happens to the rest of a cell
when a directive's title breaks it.  Cell outputs show no path of this machine (the repository,
the temporary folder, the home folder, the Python installation, ``site-packages`` or
``dist-packages``) and no stderr output other than progress bars (a logging message is not a
``...Warning`` but is still noise).

``TEST_SITE_HTML=_build/html`` tests a site that is already built, for example the published
variant that ``bash scripts/build_book.sh`` makes (notebooks executed without ``ACECOURSE_CI``, so
chapters that shrink their problems in CI show their full outputs), instead of building one from
the notebooks the session executed; ``scripts/check_pythons.sh`` does this after each build.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from html import unescape as html_unescape
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

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
    # WebGL for the interactive 3D figures, by software (SwiftShader) since there is no GPU
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
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


#: A site built already (``TEST_SITE_HTML``): tested as it is, not rebuilt.
PREBUILT = os.environ.get("TEST_SITE_HTML")


@pytest.fixture(scope="session")
def site() -> Path:
    """Build the book from the executed notebooks; return the HTML folder."""
    if PREBUILT:
        html = Path(PREBUILT).resolve()
        if not (html / "index.html").is_file():
            pytest.fail(f"TEST_SITE_HTML={PREBUILT}: no index.html there", pytrace=False)
        return html
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


FIGURES_CHECK = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const images = article ? [...article.querySelectorAll('img')] : [];
  const content = images.filter(img => !img.closest('mjx-container, .navbar-brand, .bd-header-article'));
  const problems = [];
  const fileLike = /\.(png|jpe?g|svg|gif|webp)\b|_images\/|[0-9a-f]{16,}/i;
  const heading = document.querySelector('article h1 .section-number');
  const chapter = heading ? heading.textContent.trim().replace(/\.$/, '') : null;
  const n_captions = article ? article.querySelectorAll('figure figcaption').length : 0;
  const captions = [];
  for (const img of content) {
    const name = (img.getAttribute('src') || '').split('/').pop().slice(0, 60);
    const alt = (img.getAttribute('alt') || '').trim();
    const figure = img.closest('figure');
    const caption = figure && figure.querySelector('figcaption');
    const text = caption ? caption.textContent.replace(/\s+/g, ' ').trim() : '';
    if (!caption || !text) problems.push(`image without a caption (<figcaption>): ${name}`);
    if (!alt) problems.push(`image without alt text: ${name}`);
    else if (fileLike.test(alt) || alt === name) problems.push(`file-name alt text "${alt.slice(0, 60)}"`);
    const number = caption && caption.querySelector('.caption-number');
    if (caption && chapter !== null) {
      const label = number ? number.textContent.trim() : '';
      if (!label.startsWith(`Figure ${chapter}.`))
        problems.push(`figure "${text.slice(0, 50)}" is not numbered in chapter ${chapter} ("${label}")`);
    }
    captions.push(text.slice(0, 60));
  }
  return {n_images: content.length, n_captions, chapter, problems, captions};
}
"""


def local_roots() -> list[str]:
    """Folders of this machine whose paths must not appear in a cell output (with a final /)."""
    roots = {
        str(ROOT),
        tempfile.gettempdir(),
        str(Path.home()),
        sys.prefix,
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        "/root",
        "/work",
        "/usr/local/lib/python",
        "/usr/lib/python",
    }
    return sorted(r.rstrip("/") + ("" if r.endswith("python") else "/") for r in roots if r != "/")


OUTPUTS_CHECK = r"""
(roots) => {
  const problems = [];
  const warning = /\b[A-Z][A-Za-z]*Warning\b|warnings\.warn\(/;
  const local = /\/home\/[^\s\/]+\/|site-packages|dist-packages|\.venv\b/;
  // tqdm's progress bars ("desc: 40%|####  | 2/5 [00:01<00:02, 1.5it/s]", "0it [00:00, ?it/s]")
  const progress = /\d+%\||\d+it \[/;
  for (const output of document.querySelectorAll('.cell_output')) {
    const blocks = [...output.querySelectorAll('.output')];
    for (const block of (blocks.length ? blocks : [output])) {
      const text = block.textContent;
      const isStderr = block.classList.contains('stderr') || !!block.closest('.stderr');
      const w = text.match(warning);
      if (w && isStderr) {
        const i = text.indexOf(w[0]);
        problems.push(`Python warning in a cell output: ${text.slice(Math.max(0, i - 60), i + 100).replace(/\s+/g, ' ')}`);
      }
      if (isStderr) {
        const other = text.split(/[\r\n]+/).filter(l => l.trim() && !progress.test(l));
        if (other.length)
          problems.push(`stderr output that is not a progress bar: ${other[0].slice(0, 120)}`);
      }
      const found = roots.filter(r => text.includes(r));
      const p = text.match(local);
      const hit = found.length ? found[0] : (p ? p[0] : null);
      if (hit) {
        const i = text.indexOf(hit);
        problems.push(`local path in a cell output: ${text.slice(Math.max(0, i - 60), i + 60).replace(/\s+/g, ' ')}`);
      }
    }
  }
  if (document.body.textContent.includes('_acecourse_setup'))
    problems.push('the setup cell is shown on the page (tag it remove-cell)');
  return [...new Set(problems)];
}
"""

MYST_CHECK = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return [];
  const root = article.cloneNode(true);
  root.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight')
      .forEach(e => e.remove());
  const text = root.textContent;
  const problems = [];
  const patterns = [
    [/```\{/, 'a code fence of a directive'],
    [/:::\{/, 'a colon fence of a directive'],
    [/(^|\s)\([A-Za-z0-9_.:-]+\)=(?=\s|$)/, 'a (label)= target'],
    [/\{(numref|ref|eq|doc|download|term|cite(:[a-z]+)?|math|abbr|sub|sup)\}/, 'a role'],
  ];
  for (const [pattern, what] of patterns) {
    const m = text.match(pattern);
    if (m) {
      const i = m.index;
      problems.push(`unrendered MyST (${what}) in the text: ` +
                    text.slice(Math.max(0, i - 60), i + 60).replace(/\s+/g, ' '));
    }
  }
  return problems;
}
"""

INTERACTIVE_CHECK = r"""
async () => {
  const roots = [...document.querySelectorAll('.acecourse-interactive')];
  const scripts = [...document.querySelectorAll('script[src]')].map(s => s.src)
                    .filter(src => /plotly[^/]*\.js/.test(src));
  const results = [];
  for (const root of roots) {
    const start = Date.now();
    while (Date.now() - start < 30000 &&
           !(root.classList.contains('is-live') && root.querySelector('.main-svg') &&
             root.querySelector('canvas'))) {
      await new Promise(done => setTimeout(done, 200));
    }
    results.push({id: root.id, live: root.classList.contains('is-live'),
                  svg: root.querySelectorAll('.main-svg').length,
                  canvas: root.querySelectorAll('canvas').length});
  }
  return {figures: results, scripts, plotly: typeof window.Plotly};
}
"""


def interactive_problems(result: dict, base: str) -> list[str]:
    """Problems of the interactive figures found on a page (``INTERACTIVE_CHECK``'s result)."""
    problems = []
    local_script = base + "_static/plotly.min.js"
    if result["figures"]:
        if len(result["scripts"]) != 1 or not result["scripts"][0].startswith(local_script):
            problems.append(
                f"plotly.js must come from {local_script} only, got {result['scripts']}"
            )
        if result["plotly"] != "object":
            problems.append("window.Plotly is not defined")
    elif result["scripts"]:
        problems.append(f"page without an interactive figure loads {result['scripts']}")
    for figure in result["figures"]:
        if not (figure["live"] and figure["svg"] and figure["canvas"]):
            problems.append(f"interactive figure {figure['id']} not drawn: {figure}")
    return problems


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


# --------------------------------------------------------------------------- what a page promises
def _interactive_helpers() -> tuple[str, ...]:
    import acecourse.interactive

    return tuple(name for name in acecourse.interactive.__all__ if name.endswith("_figure"))


INTERACTIVE_CALL = re.compile(r"(?<!def )\b(?:" + "|".join(_interactive_helpers()) + r")\s*\(")
FIGURE_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\{figure\}", re.MULTILINE)


@functools.cache
def numbered_docnames(toc_path: Path = TOC_PATH) -> frozenset[str]:
    """Docnames of the toc's numbered parts (every page there has a chapter number)."""
    toc = yaml.safe_load(toc_path.read_text())
    found: set[str] = set()

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                name = Path(entry["file"])
                found.add(str(name.with_suffix("") if name.suffix in (".md", ".ipynb") else name))
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        if part.get("numbered"):
            walk(part.get("chapters", []))
    return frozenset(found)


@functools.cache
def expected_of(docname: str) -> dict[str, int | bool]:
    """What the page of ``docname`` must show, counted in its source: interactive figures (code
    cells that call an ``acecourse.interactive`` helper), figures (code cells with
    ``mystnb.figure`` metadata and ``{figure}`` directives), and whether it is numbered."""
    source = source_of(docname)
    interactive = figures = 0
    if source is not None and source.suffix == ".ipynb":
        for cell in json.loads(source.read_text())["cells"]:
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "code":
                interactive += bool(INTERACTIVE_CALL.search(text))
                figures += bool((cell.get("metadata", {}).get("mystnb") or {}).get("figure"))
            elif cell["cell_type"] == "markdown":
                figures += len(FIGURE_DIRECTIVE.findall(text))
    elif source is not None:
        figures = len(FIGURE_DIRECTIVE.findall(source.read_text()))
    return {
        "interactive": interactive,
        "figures": figures,
        "numbered": docname in numbered_docnames(),
    }


def promise_problems(expected: dict, figures: dict, interactive: dict) -> list[str]:
    """Where a page shows less than its source promises (``FIGURES_CHECK`` and
    ``INTERACTIVE_CHECK`` results against :func:`expected_of`)."""
    problems = []
    if expected["numbered"] and figures["chapter"] is None:
        problems.append("no chapter number in the page title (a page of a numbered phase)")
    if figures["n_images"] < expected["figures"] or figures["n_captions"] < expected["figures"]:
        problems.append(
            f"{figures['n_images']} content images and {figures['n_captions']} captions, but the "
            f"source promises {expected['figures']} figures"
        )
    if len(interactive["figures"]) != expected["interactive"]:
        problems.append(
            f"{len(interactive['figures'])} interactive figures on the page, but the source draws "
            f"{expected['interactive']} (a static image instead of the site's output?)"
        )
    return problems


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
        figures = page.evaluate(FIGURES_CHECK)
        problems += figures["problems"]
        problems += page.evaluate(OUTPUTS_CHECK, local_roots())
        problems += page.evaluate(MYST_CHECK)
        interactive = page.evaluate(INTERACTIVE_CHECK)
        problems += interactive_problems(interactive, base)
        problems += promise_problems(expected_of(docname), figures, interactive)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for k, figure in enumerate(interactive["figures"]):
            element = page.locator(f"#{figure['id']}")
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            name = docname.replace("/", "_")
            element.screenshot(path=str(SCREENSHOTS / f"interactive_{name}_{k + 1}.png"))
        if docname in SCREENSHOT_OF:
            page.evaluate("() => window.scrollTo(0, 0)")
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
    # plotly.js of the installed plotly package (the one that wrote the figures' JSON)
    import plotly

    served = site / "_static" / "plotly.min.js"
    package = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert served.is_file() and served.read_bytes() == package.read_bytes(), served


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


# --------------------------------------------------------------------------- launch buttons
def expected_launch_links(docname: str, config: dict) -> dict[str, str]:
    """The launch links sphinx-book-theme must write for a notebook page, from ``_config.yml``.

    Everything follows from ``repository.url`` and ``repository.branch`` (a fork that changes
    them re-points every button) and the providers' URLs in ``launch_buttons``.
    """
    repo = config["repository"]
    url = urlsplit(str(repo["url"]).rstrip("/"))
    assert url.netloc == "github.com", f"launch buttons need a GitHub repository, got {url}"
    org, name = url.path.strip("/").split("/")[:2]
    branch = repo.get("branch") or "master"
    book = str(repo.get("path_to_book") or "").strip("/")
    path = f"{book}/{docname}.ipynb" if book else f"{docname}.ipynb"
    buttons = config["launch_buttons"]
    ui = {"classic": "tree", "jupyterlab": "lab/tree"}[buttons.get("notebook_interface", "classic")]
    links = {}
    if buttons.get("colab_url"):
        colab = buttons["colab_url"].strip("/")
        links["Colab"] = f"{colab}/github/{org}/{name}/blob/{branch}/{path}"
    if buttons.get("binderhub_url"):
        binder = buttons["binderhub_url"].strip("/")
        links["Binder"] = f"{binder}/v2/gh/{org}/{name}/{branch}?urlpath={ui}/{path}"
    if buttons.get("jupyterhub_url"):
        hub = buttons["jupyterhub_url"].strip("/")
        links["JupyterHub"] = {  # compared as parsed query parameters
            "prefix": f"{hub}/hub/user-redirect/git-pull",
            "repo": [str(repo["url"]).rstrip("/")],
            "branch": [branch],
            "urlpath": [f"{ui}/{name}/{path}"],
        }
    return links


NOTEBOOK_DOCNAMES = [
    name
    for name in DOCNAMES
    if (source_of(name) is not None and source_of(name).suffix == ".ipynb")
]


def test_sources_promise_what_the_course_has() -> None:
    """The counting of :func:`expected_of` finds the course's figures (so the page checks that
    use it cannot pass vacuously): the three interactive figures of issue 14, numbered phases,
    and figures on most notebook pages (of the whole ``_toc.yml``)."""
    docnames = toc_docnames(ROOT / "_toc.yml")
    interactive = {
        d: expected_of(d)["interactive"] for d in docnames if expected_of(d)["interactive"]
    }
    assert interactive == {
        "00_fundamentals/02_spherical_harmonics": 1,
        "01_atomic_cluster_expansion/01_neighbour_density": 1,
        "03_mace_architecture/05_using_the_model": 1,
    }, interactive
    numbered = numbered_docnames(ROOT / "_toc.yml")
    assert {"00_fundamentals/index", "04_multi_ace_framework/03_design_space_study"} <= numbered
    assert docnames[0] not in numbered and "book/notation" not in numbered
    with_figures = [d for d in docnames if expected_of(d)["figures"]]
    assert "01_atomic_cluster_expansion/index" in with_figures  # a {figure} directive
    assert len(with_figures) >= 15, with_figures


def test_page_checks_fail_on_missing_promises() -> None:
    """The page-level comparisons fail when a page shows less than its source promises."""
    expected = {"interactive": 1, "figures": 3, "numbered": True}
    figures = {"chapter": None, "n_images": 2, "n_captions": 3}
    problems = promise_problems(expected, figures, {"figures": []})
    assert len(problems) == 3, problems
    assert not promise_problems(
        expected, {"chapter": "0.2", "n_images": 3, "n_captions": 3}, {"figures": [{}]}
    )


def test_local_roots_cover_this_machine() -> None:
    roots = local_roots()
    for path in (ROOT, Path(tempfile.gettempdir()), Path(sys.prefix), Path.home()):
        assert any(f"{path}/x".startswith(r) for r in roots), (path, roots)
    assert all(r not in ("/", "") for r in roots)


def test_launch_buttons_are_configured() -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    links = expected_launch_links("00_fundamentals/01_rotations", config)
    assert {"Colab", "Binder"} <= set(links), f"Colab and Binder launch buttons off: {links}"
    for path in ("binder/requirements.txt", "binder/postBuild", "binder/runtime.txt"):
        assert (ROOT / path).is_file(), f"{path} missing: Binder could not build the course"


def _name(requirement: str) -> str:
    return re.split(r"[\s;=<>!~\[@]", requirement.strip(), maxsplit=1)[0].lower()


def test_binder_installs_the_learner_packages_at_the_pins() -> None:
    """binder/requirements.txt: pyproject.toml's dependencies, each pinned by the repository's
    requirements.txt applied as constraints, nothing of the build or test tools; pip resolves it
    (dry run, offline) against this pinned environment."""
    import tomllib

    lines = [
        line.split("#", 1)[0].strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    ]
    options = [line for line in lines if line.startswith("-")]
    names = [_name(line) for line in lines if line and not line.startswith("-")]
    assert "-c ../requirements.txt" in options and not any(o.startswith("-r") for o in options)
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(names) == sorted(_name(r) for r in runtime)
    pins = {
        _name(line): line
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert all(name in pins for name in names), [n for n in names if n not in pins]
    assert not {"jupyter-book", "pytest", "ruff", "playwright"} & set(names)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet"]
        + ["--disable-pip-version-check", "-r", str(ROOT / "binder" / "requirements.txt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("docname", NOTEBOOK_DOCNAMES, ids=NOTEBOOK_DOCNAMES)
def test_downloaded_notebook_installs_the_site_commit(site: Path, docname: str) -> None:
    """The download button's copy names the build's commit first, then the branch
    (book/_ext/source_commit.py)."""
    copy = site / "_sources" / f"{docname}.ipynb"
    assert copy.is_file(), f"{copy} missing: the download button has nothing to give"
    cells = json.loads(copy.read_text())["cells"]
    setup = next(c for c in cells if "acecourse-setup" in c.get("metadata", {}).get("tags", []))
    line = next(line for line in setup["source"] if line.lstrip().startswith("refs = "))
    refs = json.loads(line[line.rindex(" else ") + len(" else ") :])
    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from source_commit import build_commit

    if build_commit(ROOT) is None and not PREBUILT:  # no git (e.g. an unpacked archive)
        assert refs == [branch], line
    else:
        assert len(refs) == 2 and re.fullmatch(r"[0-9a-f]{7,40}", refs[0]), line
        assert refs[1] == branch, line


@pytest.mark.parametrize("docname", NOTEBOOK_DOCNAMES, ids=NOTEBOOK_DOCNAMES)
def test_launch_links_open_this_notebook(site: Path, docname: str) -> None:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    page = (site / f"{docname}.html").read_text()
    hrefs = [html_unescape(h) for h in re.findall(r'<a href="([^"]+)"', page)]
    for provider, expected in expected_launch_links(docname, config).items():
        if isinstance(expected, dict):
            found = [h for h in hrefs if h.startswith(expected["prefix"] + "?")]
            assert found, f"{docname}: no {provider} link"
            query = parse_qs(urlsplit(found[0]).query)
            assert {k: query.get(k) for k in ("repo", "branch", "urlpath")} == {
                k: v for k, v in expected.items() if k != "prefix"
            }, f"{docname}: {provider} link {found[0]}"
        else:
            assert expected in hrefs or quote(expected, safe=":/?=&") in hrefs, (
                f"{docname}: no {provider} link {expected} (links to that host: "
                f"{[h for h in hrefs if urlsplit(h).netloc == urlsplit(expected).netloc]})"
            )
