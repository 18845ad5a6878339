#!/usr/bin/env bash
# Build the course website: set up .venv, execute every notebook, write _build/html/.
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
# -W: warnings are errors; -n: nitpicky (broken references); --keep-going: report all of them.
# _config.yml sets execute_notebooks: force, allow_errors: false, a 1200 s timeout per cell.
jupyter-book build . -W -n --keep-going "${toc[@]}"
t2=$SECONDS
echo
echo "set-up: $((t1 - t0)) s, build (with notebook execution): $((t2 - t1)) s"
echo "The website is in $(pwd)/_build/html/ — open $(pwd)/_build/html/index.html in a browser,"
echo "or serve it with:  .venv/bin/python -m http.server -d _build/html 8000   (then open http://localhost:8000)"
