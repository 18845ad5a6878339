#!/usr/bin/env bash
# Build the course website: set up .venv, execute the notebooks, write _build/html/.
# Incremental: a notebook is executed again only when its code or the course's inputs changed
# (book/_ext/build_cache.py); `rm -rf _build` starts from scratch.
# Usage: bash scripts/build_book.sh
# Environment: ACECOURSE_TOC=path uses another table of contents (development only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
bash scripts/setup_env.sh
t1=$SECONDS
. .venv/bin/activate
toc=()
[[ -n "${ACECOURSE_TOC:-}" ]] && toc=(--toc "$ACECOURSE_TOC")
# _config.yml sets execute_notebooks: cache (jupyter-cache in _build/.jupyter_cache, so a fresh
# clone executes every notebook), allow_errors: false, a 1200 s timeout per cell.  Every build
# (book/_ext/build_cache.py) executes all notebooks again when the package, scripts/, artifacts/,
# the pins or the Python changed; myst-nb logs each executed notebook's time.
# -W: warnings are errors; -n: nitpicky (broken references); --keep-going: report all of them.
status=0
jupyter-book build . "${toc[@]}" -W -n --keep-going || status=$?
t2=$SECONDS
echo
echo "set-up: $((t1 - t0)) s, build (with notebook execution): $((t2 - t1)) s"
if [[ $status != 0 ]]; then
  echo "build_book: jupyter-book build failed (exit status $status); see the messages above" >&2
  exit $status
fi
echo "The website is in $(pwd)/_build/html/ — open $(pwd)/_build/html/index.html in a browser,"
echo "or serve it with:  .venv/bin/python -m http.server -d _build/html 8000   (then open http://localhost:8000)"
