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

The reader's page (issue 20): no page says how the project gets its GPU time or builds
(:data:`INFRASTRUCTURE_PHRASES`); nothing in the content column overflows it at 1280 px (code,
display math, tables, outputs, images; folded cells opened first) and no code line is longer than
88 characters; one output box per stream (``nb_merge_streams``); the smallest text of every figure,
as rendered, is at least :data:`MIN_TEXT_PX` CSS px (PNG figures carry their smallest text in
image pixels, written by :mod:`acecourse.plotting`, scaled here by the rendered width; SVG
diagrams are measured in the browser); the "References" section of an index page has no chapter
number; one search box per page at 1280 and at 390 px; Plotly's mode bar does not cover a
figure's title.  The measurements of every page go to ``test-artifacts/site_measurements.json``;
one screenshot per phase at 1280 px and at 390 px to ``test-artifacts/screenshots/``.

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

from acecourse.plotting import TEXT_PX_KEY, png_text_chunks

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
#: A phone's viewport (the second screenshot of each phase, the search box count).
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
#: Smallest text of a figure, in CSS px as rendered in the page.
MIN_TEXT_PX = 9.0
#: Longest code line a page may show (the column shows about 88 characters at 1280 px).
MAX_CODE_LINE = 88
#: Measurements of every page (figure text, code lines), for the closing note of a change.
MEASUREMENTS = ARTIFACTS / "site_measurements.json"
#: Phrases about how the project gets or uses its GPU time and its build machines (issue 20 item 1).
#: A page speaks to the learner; provenance of a GPU result is one sentence and a link to
#: ``artifacts/*/README.md``.  Matched case-insensitively in the page's article (code included).
INFRASTRUCTURE_PHRASES = (
    "lent GPU",
    "device call",
    "device budget",
    "device time",
    "device machine",
    "64 MiB",
    "16 MiB",
    "scripts/device",
    "gpu.sh",
    "shared with other jobs",
    "load 4 to 7",
    "shared machine",
    "build machine",
    "course machine",
    "course's machine",
    "CI mode",
    "ACECOURSE_CI",
    "an earlier version of this page",
    "platformdirs",
    "borrowed GPU",
    "start empty",
)


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
    MEASUREMENTS.unlink(missing_ok=True)  # this session's measurements only
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


# --------------------------------------------------------------------------- the reader's page
ARTICLE_TEXT = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return '';
  const root = article.cloneNode(true);
  root.querySelectorAll('script, style').forEach(e => e.remove());
  return root.textContent.replace(/\s+/g, ' ');
}
"""


#: Linter and workaround comments that no code cell shows (issue 20 item 6).
WORKAROUND_COMMENTS = ("# noqa", "# fmt: skip", "# fmt: off", "# type: ignore", "add_safe_globals")
#: Title of every chapter's opening box (issue 20 item 7).
OPENING_TITLE = "In this chapter"

CODE_AND_BOXES = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return {code: '', titles: []};
  const code = [...article.querySelectorAll('.cell_input pre')].map(p => p.textContent).join('\n');
  const titles = [...article.querySelectorAll('.admonition > .admonition-title')]
    .map(t => t.textContent.replace(/\s+/g, ' ').trim());
  return {code, titles};
}
"""


def workaround_comments(code: str) -> list[str]:
    """Lines of ``code`` with a :data:`WORKAROUND_COMMENTS` entry."""
    return [
        line.strip()[:100]
        for line in code.splitlines()
        if any(marker in line for marker in WORKAROUND_COMMENTS)
    ]


def opening_box_problems(titles: list[str]) -> list[str]:
    """A chapter's first admonition is its opening box, titled :data:`OPENING_TITLE`, and it
    has no other box with that title or the old "Learning goals"."""
    if not titles or titles[0] != OPENING_TITLE:
        return [f'the first box is not titled "{OPENING_TITLE}" (boxes: {titles[:3]})']
    extra = [t for t in titles[1:] if t in (OPENING_TITLE, "Learning goals")]
    return [f"a second opening box: {extra}"] if extra else []


def infrastructure_phrases(text: str) -> list[str]:
    """The :data:`INFRASTRUCTURE_PHRASES` in ``text`` (case-insensitive), each with context."""
    found = []
    lower = text.lower()
    for phrase in INFRASTRUCTURE_PHRASES:
        i = lower.find(phrase.lower())
        if i >= 0:
            context = text[max(0, i - 50) : i + len(phrase) + 50].strip()
            found.append(f'"{phrase}" in "...{context}..."')
    return found


LAYOUT_CHECK = r"""
(maxLine) => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  if (!article) return {overflow: [], n_lines: 0, long_lines: []};
  // folded cells and dropdowns are measured open: a reader who opens them sees this
  article.querySelectorAll('details').forEach(d => { d.open = true; });
  const box = article.getBoundingClientRect();
  const describe = (el) => {
    const what = el.closest('.cell_output') ? 'cell output'
      : el.closest('.cell_input') ? 'code cell'
      : el.closest('mjx-container, div.math') ? 'display math'
      : el.closest('table') ? 'table' : el.tagName.toLowerCase();
    const text = (el.textContent || el.getAttribute('alt') || el.getAttribute('src') || '');
    return `${what}: ${text.replace(/\s+/g, ' ').trim().slice(0, 70)}`;
  };
  const overflow = [];
  const seen = new Set();
  const flagged = [];
  const selectors = ['pre', 'div.highlight', 'div.math', 'mjx-container[display="true"]',
    'mjx-container[display="true"] > svg', 'table', '.pst-scrollable-table-container',
    '.table-wrapper', '.cell_output .output', 'img', '.acecourse-interactive', 'figure'];
  for (const el of article.querySelectorAll(selectors.join(', '))) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const clips = ['auto', 'scroll', 'hidden'].includes(getComputedStyle(el).overflowX);
    const scrolls = clips && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1;
    const beyond = r.right > box.right + 1 || r.left < box.left - 1;
    if (!(scrolls || beyond)) continue;
    if (flagged.some(f => f.contains(el))) continue;  // its container is reported already
    flagged.push(el);
    const key = describe(el);
    if (seen.has(key)) continue;
    seen.add(key);
    const width = scrolls ? el.scrollWidth : Math.round(r.width);
    const room = scrolls ? el.clientWidth : Math.round(box.right - r.left);
    overflow.push(`${key} (${width} px wide in ${room} px)`);
  }
  const pres = new Set([...article.querySelectorAll('.cell_input pre, div.highlight pre, pre.literal-block')]
                       .filter(p => !p.closest('.cell_output')));
  let nLines = 0;
  const long = [];
  for (const pre of pres) {
    for (const line of pre.textContent.replace(/\n$/, '').split('\n')) {
      nLines += 1;
      if (line.length > maxLine) long.push(`${line.length}: ${line.trim().slice(0, 90)}`);
    }
  }
  return {overflow, n_lines: nLines, long_lines: long};
}
"""

STREAMS_CHECK = r"""
() => {
  const problems = [];
  for (const output of document.querySelectorAll('.cell_output')) {
    const kinds = [...output.children].filter(e => e.classList.contains('output'))
      .map(e => e.classList.contains('stderr') ? 'stderr' : e.classList.contains('stream') ? 'stdout' : '');
    for (let i = 1; i < kinds.length; i++) {
      if (kinds[i] && kinds[i] === kinds[i - 1]) {
        const text = output.textContent.replace(/\s+/g, ' ').trim().slice(0, 80);
        problems.push(`two ${kinds[i]} boxes in one cell output (nb_merge_streams): ${text}`);
        break;
      }
    }
  }
  return problems;
}
"""

REFERENCES_CHECK = r"""
() => [...document.querySelectorAll('article h1, article h2, article h3')]
  .filter(h => h.querySelector('.section-number') && /(References|Bibliography)/.test(h.textContent))
  .map(h => h.textContent.replace(/[\s#¶]+/g, ' ').trim())
"""

SEARCH_CHECK = r"""
() => {
  const selectors = '.search-button-field, button.search-button, .bd-search, #searchbox, ' +
                    'form[role="search"], input[type="search"]';
  const shown = [...document.querySelectorAll(selectors)].filter(e => {
    const r = e.getBoundingClientRect();
    const s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && parseFloat(s.opacity) > 0;
  });
  // a field inside a form is one search box: count the outermost ones
  return shown.filter(e => !shown.some(o => o !== e && o.contains(e)))
              .map(e => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`);
}
"""

MODEBAR_CHECK = r"""
() => [...document.querySelectorAll('.acecourse-interactive')].map(root => {
  const title = root.querySelector('.gtitle');
  const bar = root.querySelector('.modebar');
  if (!title || !bar || !title.textContent.trim()) return {id: root.id, overlap: false};
  const a = title.getBoundingClientRect(), b = bar.getBoundingClientRect();
  const overlap = a.width > 0 && b.width > 0 && a.left < b.right && b.left < a.right &&
                  a.top < b.bottom && b.top < a.bottom;
  return {id: root.id, overlap, title: title.textContent.trim().slice(0, 40)};
})
"""

FIGURE_TEXT_CHECK = r"""
async () => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const results = [];
  for (const img of (article ? article.querySelectorAll('img') : [])) {
    if (img.closest('mjx-container, .navbar-brand, .bd-header-article')) continue;
    const r = img.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) continue;
    const src = img.currentSrc || img.src;
    const figure = img.closest('figure');
    const caption = ((figure && figure.querySelector('figcaption')) || img).textContent || img.alt || '';
    const item = {src, width: r.width, natural: img.naturalWidth,
                  caption: caption.replace(/\s+/g, ' ').trim().slice(0, 60)};
    if (/\.svg([?#]|$)/i.test(src)) {
      // the SVG drawn inline at the image's rendered size: each text's font size times the
      // scale from its user units to the screen
      try {
        const text = await (await fetch(src)).text();
        const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
        const svg = document.importNode(doc.documentElement, true);
        if (!svg.getAttribute('viewBox')) {
          const w = parseFloat(svg.getAttribute('width')), h = parseFloat(svg.getAttribute('height'));
          if (w > 0 && h > 0) svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
        }
        svg.setAttribute('width', r.width);
        svg.setAttribute('height', r.height);
        const host = document.createElement('div');
        host.style.cssText = `position:absolute;left:0;top:0;width:${r.width}px;` +
                             `height:${r.height}px;visibility:hidden;overflow:hidden;`;
        host.appendChild(svg);
        document.body.appendChild(host);
        let smallest = null;
        for (const t of svg.querySelectorAll('text, tspan')) {
          if (![...t.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
          const size = parseFloat(getComputedStyle(t).fontSize);
          const m = t.getScreenCTM();
          if (!m || !(size > 0)) continue;
          const px = size * Math.sqrt(m.c * m.c + m.d * m.d);
          if (smallest === null || px < smallest) smallest = px;
        }
        host.remove();
        item.svg_px = smallest;
      } catch (error) {
        item.error = String(error);
      }
    }
    results.push(item);
  }
  return results;
}
"""


def figure_text_problems(items: list[dict], html_dir: Path, base: str) -> tuple[list[str], list]:
    """Figures whose smallest text renders below :data:`MIN_TEXT_PX` (``FIGURE_TEXT_CHECK``'s
    items), and the smallest text of each measured figure in CSS px.

    A PNG of the course style carries its smallest text in image pixels (``TEXT_PX_KEY``):
    rendered size = that x rendered width / natural width.  A matplotlib PNG without it was not
    made with the course style and fails; other images (no text chunk) are not measured.
    """
    problems: list[str] = []
    sizes: list[tuple[float, str]] = []
    for item in items:
        label = item.get("caption") or item["src"].rsplit("/", 1)[-1][:60]
        if item.get("error"):
            problems.append(f"SVG figure not measured ({item['error']}): {label}")
            continue
        if "svg_px" in item:
            if item["svg_px"] is None:
                continue  # an SVG without text
            px = float(item["svg_px"])
        else:
            if not item["src"].startswith(base):
                continue
            path = html_dir / unquote(urlsplit(item["src"]).path).lstrip("/")
            if path.suffix.lower() != ".png" or not path.is_file() or not item.get("natural"):
                continue
            chunks = png_text_chunks(path.read_bytes())
            if TEXT_PX_KEY not in chunks:
                if "matplotlib" in chunks.get("Software", "").lower():
                    problems.append(
                        "matplotlib figure without its text measurement (draw it after "
                        f"acecourse.plotting.use_course_style()): {label}"
                    )
                continue
            px = float(chunks[TEXT_PX_KEY]) * float(item["width"]) / float(item["natural"])
        sizes.append((round(px, 2), label))
        if px < MIN_TEXT_PX - 1e-9:
            problems.append(
                f"figure text renders at {px:.1f} px (smallest allowed {MIN_TEXT_PX:g} px): {label}"
            )
    return problems, sizes


def modebar_problems(figures: list[dict], width: str) -> list[str]:
    return [
        f"Plotly's mode bar covers the title of {f['id']} at {width}: {f.get('title')}"
        for f in figures
        if f.get("overlap")
    ]


def record_measurements(docname: str, **values) -> None:
    """Add a page's measurements to ``test-artifacts/site_measurements.json``."""
    data = json.loads(MEASUREMENTS.read_text()) if MEASUREMENTS.is_file() else {}
    data.setdefault(docname, {}).update(values)
    MEASUREMENTS.parent.mkdir(parents=True, exist_ok=True)
    MEASUREMENTS.write_text(json.dumps(data, indent=1, sort_keys=True))


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
        # the reader's page (issue 20)
        problems += [
            f"infrastructure phrase on the page: {found}"
            for found in infrastructure_phrases(page.evaluate(ARTICLE_TEXT))
        ]
        problems += page.evaluate(STREAMS_CHECK)
        boxes = page.evaluate(CODE_AND_BOXES)
        problems += [
            f"workaround comment in a code cell: {c}" for c in workaround_comments(boxes["code"])
        ]
        source = source_of(docname)
        if expected_of(docname)["numbered"] and source is not None and source.suffix == ".ipynb":
            problems += opening_box_problems(boxes["titles"])
        problems += [f"numbered like a chapter: {h}" for h in page.evaluate(REFERENCES_CHECK)]
        searches = {"1280 px": page.evaluate(SEARCH_CHECK)}
        problems += modebar_problems(page.evaluate(MODEBAR_CHECK), "1280 px")
        text_problems, text_sizes = figure_text_problems(
            page.evaluate(FIGURE_TEXT_CHECK), html_dir, base
        )
        problems += text_problems
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for k, figure in enumerate(interactive["figures"]):
            element = page.locator(f"#{figure['id']}")
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            name = docname.replace("/", "_")
            element.screenshot(path=str(SCREENSHOTS / f"interactive_{name}_{k + 1}.png"))
        if docname in SCREENSHOT_OF:
            page.evaluate("() => window.scrollTo(0, 0)")
            page.screenshot(path=str(SCREENSHOTS / f"{SCREENSHOT_OF[docname]}_1280.png"))
        # a phone: one search box, the mode bar off the titles, a screenshot per phase
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(800)  # the theme's and Plotly's layout after the resize
        searches["390 px"] = page.evaluate(SEARCH_CHECK)
        problems += modebar_problems(page.evaluate(MODEBAR_CHECK), "390 px")
        if docname in SCREENSHOT_OF:
            page.evaluate("() => window.scrollTo(0, 0)")
            page.wait_for_timeout(200)
            page.screenshot(path=str(SCREENSHOTS / f"{SCREENSHOT_OF[docname]}_390.png"))
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(500)
        problems += [
            f"{len(found)} search boxes at {width} (one per page): {found}"
            for width, found in searches.items()
            if len(found) != 1
        ]
        # last, since it opens the folded cells: overflow at 1280 px, code lines
        layout = page.evaluate(LAYOUT_CHECK, MAX_CODE_LINE)
        problems += [f"overflows the content column at 1280 px: {o}" for o in layout["overflow"]]
        if layout["long_lines"]:
            problems.append(
                f"{len(layout['long_lines'])} of {layout['n_lines']} code lines are longer than "
                f"{MAX_CODE_LINE} characters: " + "; ".join(layout["long_lines"][:5])
            )
        record_measurements(
            docname,
            code_lines=layout["n_lines"],
            long_code_lines=len(layout["long_lines"]),
            overflow=len(layout["overflow"]),
            figure_text_px=text_sizes,
            smallest_figure_text_px=min((px for px, _ in text_sizes), default=None),
            infrastructure_phrases=len(
                [p for p in problems if p.startswith("infrastructure phrase")]
            ),
        )
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
    """The download button's copy installs the build's commit (abbreviated to fit the line),
    and nothing else: no fallback to the branch (book/_ext/source_commit.py)."""
    copy = site / "_sources" / f"{docname}.ipynb"
    assert copy.is_file(), f"{copy} missing: the download button has nothing to give"
    cells = json.loads(copy.read_text())["cells"]
    setup = next(c for c in cells if "acecourse-setup" in c.get("metadata", {}).get("tags", []))
    line = setup["source"][-1]
    assert line.lstrip().startswith("%pip install"), line
    ref = line.rsplit("@", 1)[1].strip()
    branch = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["branch"]
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from source_commit import build_commit

    commit = build_commit(ROOT)
    if commit is None and not PREBUILT:  # no git (e.g. an unpacked archive)
        assert ref == branch, line
    else:
        assert re.fullmatch(r"[0-9a-f]{7,40}", ref) and len(line) <= 88, line
        assert PREBUILT or commit.startswith(ref), (line, commit)


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


# --------------------------------------------------------------------------- the reader's page
def test_phrase_list_finds_infrastructure_talk() -> None:
    """The phrase check is case-insensitive and quotes the place; reader's text passes."""
    found = infrastructure_phrases("Measured in ci mode on a machine shared with other jobs.")
    assert len(found) == 2 and "shared with other jobs" in found[1], found
    assert not infrastructure_phrases(
        "about 40 s on a 2-core laptop CPU; a GPU run took 264 s (artifacts/mace_ethanol/README.md)"
    )


def test_readme_and_contributing_are_not_pages(site: Path) -> None:
    """The README and CONTRIBUTING are for the repository: no page of the site is made of them,
    and the README, which readers of the repository see first, says nothing about how the
    project gets its GPU time (that is in CONTRIBUTING)."""
    built = {p.name for p in site.rglob("*.html")}
    assert not {"README.html", "CONTRIBUTING.html"} & built
    # the README documents the test command's ACECOURSE_CI for developers; the rest applies
    found = [
        f
        for f in infrastructure_phrases((ROOT / "README.md").read_text())
        if not f.startswith(('"ACECOURSE_CI"', '"CI mode"'))
    ]
    assert not found, "README.md:\n" + "\n".join(found)


def test_training_help_speaks_to_readers() -> None:
    """``python -m acecourse.training --help`` (shown in chapter 3.4) is for the learner."""
    result = subprocess.run(
        [sys.executable, "-m", "acecourse.training", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = infrastructure_phrases(result.stdout)
    assert not found, "\n".join(found)


def test_how_to_use_shows_the_clone_command() -> None:
    """The third recipe shows the clone URL of ``_config.yml``'s repository."""
    url = str(yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"])
    text = (ROOT / "book" / "how_to_use.md").read_text()
    assert f"git clone {url.rstrip('/')}.git" in text or f"git clone {url}" in text


def test_figure_text_measurement(tmp_path: Path) -> None:
    """A course-style PNG carries its smallest text in image pixels; the page check scales it by
    the rendered width and fails below MIN_TEXT_PX; a plain matplotlib PNG fails as unmeasured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from acecourse import plotting

    plotting.use_course_style()
    fig, ax = plt.subplots(figsize=(7.4, 3.0))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("time (fs)", fontsize=6)
    png = plotting.figure_png(fig)  # at 2 x 100 dpi: 6 pt = 16.67 image px
    plain = tmp_path / "plain.png"
    fig.savefig(plain)
    plt.close(fig)
    assert float(png_text_chunks(png)[TEXT_PX_KEY]) == pytest.approx(6 / 72 * 200, abs=0.01)
    (tmp_path / "course.png").write_bytes(png)
    base = "http://127.0.0.1:1/"
    natural = int.from_bytes(png[16:20], "big")
    item = {"src": base + "course.png", "natural": natural, "caption": "a figure"}
    # shown at its natural CSS size (half its pixels): 8.3 px, too small
    problems, sizes = figure_text_problems([{**item, "width": natural / 2}], tmp_path, base)
    assert len(problems) == 1 and sizes[0][0] == pytest.approx(8.33, abs=0.01), problems
    # the same image shown at its full pixel width: 16.7 px
    assert not figure_text_problems([{**item, "width": natural}], tmp_path, base)[0]
    unmeasured = {"src": base + "plain.png", "natural": 100, "width": 100, "caption": "x"}
    assert (
        "without its text measurement" in figure_text_problems([unmeasured], tmp_path, base)[0][0]
    )
    svg = {"src": base + "d.svg", "svg_px": 7.5, "caption": "diagram", "width": 700}
    assert "7.5 px" in figure_text_problems([svg], tmp_path, base)[0][0]


def test_front_page_status_is_read_from_the_artifacts(tmp_path: Path) -> None:
    """book/_ext/course_status.py: a chain row of the recipe wins over a better run of an earlier
    model; with no chain row, the best run is named with how its model differs."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import course_status

    recipe = {"max_epochs": 1000, "hidden_irreps": "8x0e+8x1o", "max_ell": 3}
    config = tmp_path / "config.py"
    config.write_text(f"FULL_RECIPE = {recipe!r}\n")
    run = tmp_path / "runs" / "seed1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"command": "train --profile full --out x"}))
    (run / "config.json").write_text(json.dumps({"hidden_irreps": "8x0e", "max_ell": 3}))
    (run / "metrics.csv").write_text("epoch,valid_loss\n1,2.0\n2,1.0\n")
    (run / "test_metrics.json").write_text(json.dumps({"forces_mae_meV_per_A": 9.04}))
    values = course_status.status(tmp_path, config)
    assert values["status_forces_mae"] == "9.0" and values["status_epochs"] == "2"
    assert values["status_recipe_epochs"] == "1,000"
    assert (
        "earlier model" in values["status_recipe_note"]
        and "8x0e+8x1o" in (values["status_recipe_note"])
    )
    (tmp_path / "chain").mkdir()
    (tmp_path / "chain" / "chain.csv").write_text(
        "window,cumulative_epochs,test_forces_mae_meV_per_A\n0,40,12.34\n"
    )
    values = course_status.status(tmp_path, config)
    assert (values["status_forces_mae"], values["status_epochs"]) == ("12.3", "40")
    assert values["status_recipe_note"] == ""


def test_opening_box_and_workaround_checks() -> None:
    assert not opening_box_problems(["In this chapter", "Solution 1"])
    assert opening_box_problems(["Learning goals"])
    assert opening_box_problems(["In this chapter", "Learning goals"])
    assert workaround_comments("x = 1  # noqa: E501\ny = 2\n# fmt: skip") == [
        "x = 1  # noqa: E501",
        "# fmt: skip",
    ]


SEARCH_SNIPPETS = r"""
async () => {
  const start = Date.now();
  while (Date.now() - start < 30000 && !document.querySelector('#search-results p.context'))
    await new Promise(done => setTimeout(done, 250));
  await new Promise(done => setTimeout(done, 1500));  // the rest of the snippets
  return [...document.querySelectorAll('#search-results p.context')]
    .map(p => p.textContent.replace(/\s+/g, ' ').trim());
}
"""


def test_search_snippets_show_no_raw_math(browser_context, server: str) -> None:
    """Search results (book/_static/search_snippets.js) leave a page's math out of their text
    snippets instead of showing its TeX source (``\\(...\\)``)."""
    page = browser_context.new_page()
    try:
        page.goto(server + "search.html?q=harmonics", wait_until="load", timeout=60_000)
        snippets = page.evaluate(SEARCH_SNIPPETS)
    finally:
        page.close()
    assert len(snippets) >= 5, snippets
    raw = [s for s in snippets if "\\(" in s or "\\[" in s]
    assert not raw, raw[:3]
