#!/usr/bin/env bash
# Run every check of the course: first `ruff check .` (the package, scripts, tests, book/_ext and
# the notebooks, with pyproject.toml's settings), then every test in one pytest session: unit
# tests of the package, each notebook executed in a clean kernel (ACECOURSE_CI=1), the book built
# from those executed notebooks, and a headless-Chromium test of the built site.  A ruff finding
# fails the run, but pytest still runs, so that every failure shows.  Exits non-zero on any
# failure.
# Usage: bash scripts/run_tests.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
bash scripts/setup_env.sh --test
echo "stage set-up: $((SECONDS - t0)) s"
. .venv/bin/activate
export ACECOURSE_CI=1
ruff_status=0
ruff check . || ruff_status=$?
echo "stage ruff check: exit status $ruff_status"
status=0
python -m pytest -ra "$@" || status=$?
echo "run_tests: total $((SECONDS - t0)) s, ruff exit status $ruff_status, pytest exit status $status"
if [[ $status == 0 && $ruff_status != 0 ]]; then status=$ruff_status; fi
exit $status
