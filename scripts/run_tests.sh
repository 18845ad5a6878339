#!/usr/bin/env bash
# Run every test of the course in one pytest session: unit tests of the package, each notebook
# executed in a clean kernel (ACECOURSE_CI=1), the book built from those executed notebooks, and
# a headless-Chromium test of the built site.  Exits non-zero on any failure.
# Usage: bash scripts/run_tests.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$SECONDS
bash scripts/setup_env.sh --test
echo "stage set-up: $((SECONDS - t0)) s"
. .venv/bin/activate
export ACECOURSE_CI=1
status=0
python -m pytest -ra "$@" || status=$?
echo "run_tests: total $((SECONDS - t0)) s, pytest exit status $status"
exit $status
