"""Build the book incrementally, never showing a notebook's output from older inputs.

``_config.yml`` sets ``execute_notebooks: cache``: myst-nb keeps each executed notebook in
jupyter-cache (``_build/.jupyter_cache``), keyed on the notebook's code cells, and Sphinx re-reads
only the pages whose source changed.  Neither sees what a notebook imports or reads: after a
change in ``acecourse`` both would keep showing the outputs computed with the old code.  This
module closes that gap.  For every notebook of the table of contents it computes a fingerprint of
the inputs of its execution apart from its own code:

* the source of every module of the package it imports, closed over the imports between the
  package's modules (``import acecourse.plotting`` also depends on ``acecourse/__init__.py`` and on
  whatever ``plotting`` imports from the package), and every non-Python file of the package;
* the modules it imports through ``sys.path`` from its own folder or from a folder of the
  repository it names (``sys.path.insert(0, str(Path("../scripts").resolve()))`` then
  ``import design_space_sweep``), with what they import in turn, from there and from the package;
* the files it names by a path relative to its folder (``"../artifacts/phase01/ace_fit.json"``;
  a named folder with all its files), if git tracks them (a file it writes is an output);
* the global inputs: ``artifacts/``; ``book/_ext/kernel_env.py`` (the settings and warning filters
  of the kernels that execute the notebooks); the Python version; the installed versions of the
  distributions that ``requirements.txt`` pins and of everything they require (a pin changed in
  ``requirements.txt`` reaches the build through ``setup_env.sh``, which installs it first; a
  package installed on the side, such as jupyterlab, counts only if it changes one of them); the
  ``ACECOURSE_*`` environment variables.

A notebook whose fingerprint differs from the one recorded when its cached outputs were made loses
them (its jupyter-cache records and its Sphinx doctree), so the build executes it again.  A
notebook that names a package module dynamically (``importlib``, ``__import__``) depends on the
whole package.  After a failed or interrupted build, or one that logged a warning, the next one
re-reads every page (outputs still come from the cache), so a warning or a failed notebook is
reported again instead of being hidden by Sphinx's incremental build.

The invalidation runs inside every build, from the Sphinx extension ``book/_ext/build_cache.py``
(:func:`invalidate` when Sphinx starts, :func:`finish` when it ends), so a plain
``jupyter-book build .`` is as safe as ``bash scripts/build_book.sh``.  Run as a script, this
module is the wrapper that ``build_book.sh`` uses: it runs ``jupyter-book build`` and then prints
the wall time of each notebook, executed in this build or taken from the cache (with the time its
execution took)::

    python scripts/book_cache.py [--root DIR] [--toc FILE] [-- JUPYTER_BOOK_BUILD_OPTIONS]

Its exit status is that of ``jupyter-book build``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "acecourse"
INPUTS = ("artifacts", "book/_ext/kernel_env.py")  # the kernels' warning filters and settings
STATE_NAME = "book_cache_inputs.json"
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}
DYNAMIC_IMPORT = re.compile(r"\bimport_module\b|\b__import__\b")


# --------------------------------------------------------------------------- what a notebook runs
def toc_files(toc: Path) -> list[str]:
    """Every ``file`` entry of a Jupyter Book table of contents (root first), in reading order,
    as written there (with or without a suffix).  The one toc reader of the repository: the
    setup-cell tool and the tests use it too."""
    data = yaml.safe_load(toc.read_text())
    names = [data["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections", []))

    for part in data.get("parts", []):
        walk(part.get("chapters", []))
    walk(data.get("chapters", []))
    return names


def toc_notebooks(root: Path, toc: Path) -> list[Path]:
    """The existing ``.ipynb`` files of a Jupyter Book table of contents, in reading order."""
    notebooks = []
    for name in toc_files(toc):
        path = root / name
        path = path if path.suffix == ".ipynb" else path.with_name(path.name + ".ipynb")
        if path.is_file():
            notebooks.append(path)
    return notebooks


def _module_mentions(source: str, package: str) -> set[str]:
    """Dotted names starting with the package that appear anywhere in ``source``.

    Catches imports, ``python -m package.module`` in a shell cell and module names in strings.
    """
    pattern = re.compile(rf"(?<![\w.]){re.escape(package)}(?:\.[A-Za-z_]\w*)*")
    return set(pattern.findall(source))


def _imported_names(tree: ast.AST, module: str | None, is_package: bool) -> set[str]:
    """Dotted names a module (or notebook, ``module=None``) imports; relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and module is not None:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def notebook_code(notebook: Path) -> str:
    """The code cells of a notebook, joined."""
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join(
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in cells
        if cell["cell_type"] == "code"
    )


def notebook_imports(notebook: Path, package: str) -> tuple[set[str], bool]:
    """Package names a notebook uses, and whether it may import package modules dynamically."""
    code = notebook_code(notebook)
    names = _module_mentions(code, package)
    # IPython lines (%magic, !shell) are not Python; their package mentions are counted above.
    python = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()
    )
    try:
        names |= _imported_names(ast.parse(python), None, False)
    except SyntaxError:
        pass  # the mentions found above still count
    names = {name for name in names if name == package or name.startswith(package + ".")}
    dynamic = bool(names) and bool(DYNAMIC_IMPORT.search(code))
    return names, dynamic


def _python_of(code: str) -> ast.AST | None:
    """The code parsed as Python, IPython lines (``%magic``, ``!shell``) blanked; None if it
    does not parse."""
    python = "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines()
    )
    try:
        return ast.parse(python)
    except SyntaxError:
        return None


def _string_constants(tree: ast.AST | None) -> set[str]:
    if tree is None:
        return set()
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.strip()
    }


def _top_level_imports(tree: ast.AST | None) -> set[str]:
    """First components of the absolute imports of the code (``import a.b`` gives ``a``)."""
    if tree is None:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def named_paths(code: str, folder: Path, root: Path) -> set[Path]:
    """Existing files and folders inside ``root`` that the code names by a string constant
    relative to ``folder`` (the notebook's working directory), e.g. ``"../artifacts/x.json"`` or
    ``"../scripts"``.  Not counted: ``root``, ``folder`` and the folders between them (``".."``,
    ``"."`` name no input), and the build and git folders."""
    root = root.resolve()
    skipped = {folder.resolve(), *folder.resolve().parents}
    found = set()
    for text in _string_constants(_python_of(code)):
        if "\n" in text or len(text) > 300:
            continue
        try:
            path = (folder / text).resolve()
        except (OSError, ValueError):
            continue
        if path in skipped or not _inside(path, root) or not path.exists():
            continue
        if {"_build", ".git"} & set(path.relative_to(root).parts[:1]):
            continue
        found.add(path)
    return found


def local_modules(code: str, folder: Path, root: Path, package: str = "") -> set[Path]:
    """Python files outside the package that the code imports through ``sys.path``.

    The folders that can hold them: the code's own ``folder`` (a kernel's working directory is
    on its path) and every folder inside ``root`` that the code names by a string constant
    (``sys.path.insert(0, str(Path("../scripts").resolve()))``).  A top-level import ``name``
    found there as ``name.py`` or ``name/`` counts, and so do the modules those files import in
    turn from the same folders.  ``package`` and its folder are left out (they have their own
    analysis: the chapters' setup cell names ``"../acecourse"``, which is not on the path).
    """
    root = root.resolve()
    package_dir = root / package if package else None
    folders = [folder.resolve()] + sorted(
        p
        for p in named_paths(code, folder, root)
        if p.is_dir() and not (package_dir and (p == package_dir or package_dir in p.parents))
    )
    found: set[Path] = set()
    todo = [code]
    while todo:
        tree = _python_of(todo.pop())
        for name in sorted(_top_level_imports(tree) - {package}):
            for directory in folders:
                module = directory / f"{name}.py"
                files = [module] if module.is_file() else []
                if not files and (directory / name / "__init__.py").is_file():
                    files = _files(directory / name)
                    files = [f for f in files if f.suffix == ".py"]
                new = [f for f in files if f not in found]
                found.update(new)
                todo.extend(f.read_text() for f in new)
                if files:
                    break
    return found


def package_modules(package_dir: Path, package: str) -> dict[str, Path]:
    """Module name -> source file for every ``.py`` file of a package."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        if SKIP_PARTS & set(path.parts):
            continue
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def module_closure(names: set[str], modules: dict[str, Path]) -> set[str]:
    """The package modules that importing ``names`` executes: the modules, their parent
    packages, and everything they import from the package, transitively.  A dynamic import in
    any of them makes it the whole package."""
    package = next(iter(modules)).split(".")[0] if modules else ""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        while name and name not in modules:  # an attribute (pkg.mod.func): its module
            name = name.rpartition(".")[0]
        parts = name.split(".") if name else []
        for i in range(1, len(parts) + 1):  # parent packages run first
            module = ".".join(parts[:i])
            if module in modules and module not in seen:
                seen.add(module)
                path = modules[module]
                source = path.read_text()
                if DYNAMIC_IMPORT.search(source):
                    return set(modules)
                found = _imported_names(ast.parse(source), module, path.name == "__init__.py")
                found |= _module_mentions(source, package)
                todo.extend(n for n in found if n == package or n.startswith(package + "."))
    return seen


# --------------------------------------------------------------------------- fingerprints
def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.rglob("*") if p.is_file() and not SKIP_PARTS & set(p.parts))


def _digest(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_closure(names: list[str]) -> dict[str, str]:
    """Installed version of each named distribution and of everything it requires, transitively
    (extras not followed); ``missing`` for one that is not installed."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, str] = {}
    todo = [_canonical(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
            continue
        found[name] = dist.version
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    return found


def environment_inputs(root: Path) -> dict[str, str]:
    """The Python version; the installed versions of the distributions requirements.txt pins and
    of everything they require (a package installed on the side, e.g. jupyterlab, does not count
    unless it changes one of them); the ACECOURSE_* environment variables."""
    found = {"python": sys.version}
    requirements = root / "requirements.txt"
    pins = []
    if requirements.is_file():
        for line in requirements.read_text().splitlines():
            name = re.split(r"[\s;=<>!~\[@]", line.strip(), maxsplit=1)[0]
            if name and not name.startswith(("#", "-")):
                pins.append(name)
    found.update({f"dist:{k}": v for k, v in installed_closure(pins).items()})
    found.update({k: v for k, v in os.environ.items() if k.startswith("ACECOURSE_")})
    return found


def notebook_inputs(
    notebook: Path, root: Path, package: str, modules: dict[str, Path]
) -> tuple[set[str], list[Path], list[Path]]:
    """What a notebook's execution reads, apart from its own code and the global inputs.

    Returns the package modules it executes (:func:`module_closure` of what it and its local
    modules import), the local modules it imports through ``sys.path`` (:func:`local_modules`,
    e.g. ``../scripts/design_space_sweep.py``), and the files it names by a relative path
    (:func:`named_paths`: a named folder counts with all its files, except a folder it only
    imports modules from).  The package's own folder is left to the module analysis.
    """
    root = root.resolve()
    code = notebook_code(notebook)
    names, dynamic = notebook_imports(notebook, package)
    local = sorted(local_modules(code, notebook.parent, root, package))
    for module in local:
        source = module.read_text()
        tree = _python_of(source)
        found = _module_mentions(source, package)
        found |= _imported_names(tree, None, False) if tree is not None else set()
        names |= {n for n in found if n == package or n.startswith(package + ".")}
        dynamic = dynamic or (bool(names) and bool(DYNAMIC_IMPORT.search(source)))
    closure = set(modules) if dynamic else module_closure(names, modules)
    import_folders = {module.parent for module in local}
    package_dir = root / package
    tracked = git_tracked(root)
    data: list[Path] = []
    for path in sorted(named_paths(code, notebook.parent, root)):
        if path == package_dir or package_dir in path.parents or path in import_folders:
            continue
        data.extend(f for f in _files(path) if tracked is None or f in tracked)
    return closure, local, sorted(set(data))


@functools.cache
def git_tracked(root: Path) -> frozenset[Path] | None:
    """The files git tracks in ``root``'s work tree, or None if ``root`` is not in one.

    A named file that git does not track is an output or a local leftover (a notebook that
    writes ``runs.txt`` names it too), not an input of the published book."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--full-name", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        top = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return frozenset((Path(top) / name).resolve() for name in listed.split("\0") if name)


def fingerprints(
    root: Path, notebooks: list[Path], package: str, inputs: list[str]
) -> dict[str, str]:
    """Notebook (path relative to ``root``) -> digest of its inputs apart from its own code."""
    root = root.resolve()
    package_dir = root / package
    modules = package_modules(package_dir, package) if package_dir.is_dir() else {}
    data_files = [p for p in _files(package_dir) if p.suffix not in (".py", ".pyc")]
    shared = {
        "inputs": _digest([f for name in inputs for f in _files(root / name)], root),
        "package data": _digest(data_files, root),
        "environment": environment_inputs(root),
    }
    digests: dict[Path, str] = {}  # each file hashed once, however many notebooks read it

    def digest(paths: list[Path]) -> dict[str, str]:
        for path in paths:
            if path not in digests:
                digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return {str(p.relative_to(root)): digests[p] for p in paths}

    result = {}
    for notebook in notebooks:
        notebook = notebook.resolve()
        closure, local, named = notebook_inputs(notebook, root, package, modules)
        record = {
            "shared": shared,
            "modules": digest(sorted(modules[m] for m in closure)),
            "package data": shared["package data"] if closure else {},
            "local modules": digest(local),
            "named files": digest(named),
        }
        text = json.dumps(record, sort_keys=True)
        result[str(notebook.relative_to(root))] = hashlib.sha256(text.encode()).hexdigest()
    return result


# --------------------------------------------------------------------------- the build
def cache_path(root: Path) -> Path:
    """The jupyter-cache folder of the build: ``execute.cache`` of _config.yml, or myst-nb's
    default ``_build/.jupyter_cache``."""
    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    configured = (config.get("execute") or {}).get("cache") or ""
    return (root / configured) if configured else root / "_build" / ".jupyter_cache"


@contextlib.contextmanager
def open_cache(cache_dir: Path):
    """The build's jupyter-cache in ``cache_dir``, with its database connections closed after."""
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    try:
        yield cache
    finally:
        if getattr(cache, "_db", None) is not None:
            cache._db.dispose()


def _records_of(cache, notebook: Path) -> list:
    """Cache records made from ``notebook`` or matching its current code."""
    import nbformat

    found = {r.pk: r for r in cache.list_cache_records() if Path(r.uri).resolve() == notebook}
    try:
        match = cache.match_cache_notebook(nbformat.read(notebook, as_version=4))
        found[match.pk] = match
    except KeyError:
        pass
    return list(found.values())


def invalidate(
    root: Path,
    notebooks: list[Path],
    package: str,
    inputs: list[str],
    cache_dir: Path,
    doctrees: Path,
) -> list[str]:
    """Drop the cached outputs of notebooks whose inputs changed; return their paths.

    ``cache_dir`` is the build's jupyter-cache and ``doctrees`` Sphinx's doctree folder.  A
    changed notebook loses its cache records and its doctree, so Sphinx reads it again and
    myst-nb executes it.  After a failed or interrupted build (or one that warned) the whole
    doctree folder goes, so every page is read again.  Records the current fingerprints and marks
    the build as running (see :func:`finish`).  Run by ``book/_ext/build_cache.py`` when Sphinx
    starts, before it loads its environment.
    """
    root = root.resolve()
    state_file = cache_dir / STATE_NAME
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    if not state.get("last_build_ok") and doctrees.exists():
        shutil.rmtree(doctrees)  # re-read every page: earlier warnings and failures come back
    recorded = state.get("notebooks", {})
    current = fingerprints(root, notebooks, package, inputs)
    changed = []
    with open_cache(cache_dir) as cache:
        for notebook in notebooks:
            notebook = notebook.resolve()
            rel = str(notebook.relative_to(root))
            if recorded.get(rel) == current[rel]:
                continue
            changed.append(rel)
            for record in _records_of(cache, notebook):
                cache.remove_cache(record.pk)
            (doctrees / Path(rel).with_suffix(".doctree")).unlink(missing_ok=True)
    # Every remaining record of a notebook was made with its current inputs: record them now, so
    # that an interrupted build does not throw away the notebooks it finished.
    state = {"last_build_ok": False, "notebooks": {**recorded, **current}}
    cache_dir.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=1, sort_keys=True))
    return changed


def finish(cache_dir: Path, ok: bool) -> None:
    """Mark the build as finished in the state file: ``ok`` when it raised no error and logged
    no warning."""
    state_file = cache_dir / STATE_NAME
    if not state_file.is_file():
        return
    state = json.loads(state_file.read_text())
    state["last_build_ok"] = ok
    state_file.write_text(json.dumps(state, indent=1, sort_keys=True))


def cache_snapshot(cache_dir: Path) -> set[tuple]:
    """Identities of the cache records that exist now."""
    with open_cache(cache_dir) as cache:
        return {(r.pk, r.hashkey, r.created) for r in cache.list_cache_records()}


def report(
    cache_dir: Path, root: Path, notebooks: list[Path], before: set[tuple]
) -> list[tuple[str, str, float]]:
    """(path, status, seconds) of each notebook: ``executed`` in this build, ``cached`` (the
    seconds its cached execution took), ``FAILED`` (its execution raised; no time is recorded)
    or ``no output`` (not executed)."""
    import nbformat

    rows = []
    with open_cache(cache_dir) as cache:
        for notebook in notebooks:
            notebook = notebook.resolve()
            rel = str(notebook.relative_to(root))
            try:
                record = cache.match_cache_notebook(nbformat.read(notebook, as_version=4))
            except KeyError:
                failed = any(
                    Path(r.uri).resolve() == notebook and r.traceback
                    for r in cache.list_project_records()
                )
                rows.append((rel, "FAILED" if failed else "no output", float("nan")))
                continue
            known = (record.pk, record.hashkey, record.created) in before
            seconds = float(record.data.get("execution_seconds", float("nan")))
            rows.append((rel, "cached" if known else "executed", seconds))
    return rows


def build(root: Path, toc: Path | None = None, options: list[str] | None = None) -> int:
    """Run ``jupyter-book build`` and print the notebook times; return its exit code.

    The invalidation happens inside the build (``book/_ext/build_cache.py``), as it does for a
    plain ``jupyter-book build``; this wrapper only adds the report.
    """
    root = root.resolve()
    toc = (toc or root / "_toc.yml").resolve()
    notebooks = toc_notebooks(root, toc)
    cache_dir = cache_path(root)
    before = cache_snapshot(cache_dir)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.is_file() else "jupyter-book", "build", str(root)]
    if toc != (root / "_toc.yml").resolve():
        command += ["--toc", str(toc)]
    start = time.perf_counter()
    status = subprocess.run([*command, *(options or [])], cwd=root, check=False).returncode
    seconds = time.perf_counter() - start
    rows = report(cache_dir, root, notebooks, before)
    print("\nnotebook wall times (executed now, or the cached execution's time)")
    for rel, state, secs in rows:
        shown = "       - s" if math.isnan(secs) else f"{secs:8.1f} s"
        print(f"{shown}  {state:9s}  {rel}")
    executed = [secs for _, state, secs in rows if state == "executed"]
    print(
        f"{sum(executed):8.1f} s  executed in this build ({len(executed)} of {len(rows)} notebooks)"
    )
    print(f"{seconds:8.1f} s  jupyter-book build")
    return status


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, options = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder")
    parser.add_argument("--toc", type=Path, default=None, help="table of contents (_toc.yml)")
    args = parser.parse_args(argv)
    if not (args.root / "_config.yml").is_file():
        parser.error(f"{args.root} has no _config.yml")
    if args.toc is not None and not args.toc.is_file():
        parser.error(f"{args.toc} does not exist")
    return build(args.root, args.toc, options)


if __name__ == "__main__":
    sys.exit(main())
