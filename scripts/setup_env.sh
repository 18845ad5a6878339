#!/usr/bin/env bash
# Create (if missing) and update the course's virtual environment `.venv`.  Idempotent: when
# requirements.txt and pyproject.toml have not changed since the last run it only checks.
# Usage: bash scripts/setup_env.sh [--test]   (--test also installs the browser for the tests)
# Environment: PYTHON (interpreter to create the venv, default python3.11 or python3),
#              TORCH_INDEX_URL (optional extra index for torch, e.g. the PyTorch CPU index).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1

if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if [[ "$version" != "3.11" ]]; then
    echo "setup_env: $PYTHON is Python $version; the course needs Python 3.11 (set PYTHON=...)" >&2
    exit 1
  fi
  echo "setup_env: creating $VENV with $PYTHON"
  if ! "$PYTHON" -m venv "$VENV"; then
    # Debian's python3 needs the python3-venv package for ensurepip.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      "$PYTHON" -m venv "$VENV"
    else
      echo "setup_env: '$PYTHON -m venv' failed; install python3-venv" >&2
      exit 1
    fi
  fi
fi

PY="$VENV/bin/python"
STAMP="$VENV/.acecourse-installed"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && "$PY" -c "import acecourse" 2>/dev/null; then
  echo "setup_env: $VENV is up to date"
else
  echo "setup_env: installing requirements.txt and the acecourse package into $VENV"
  "$PY" -m pip install --quiet --upgrade pip
  extra=()
  [[ -n "${TORCH_INDEX_URL:-}" ]] && extra=(--extra-index-url "$TORCH_INDEX_URL")
  "$PY" -m pip install --quiet "${extra[@]}" -r requirements.txt
  "$PY" -m pip install --quiet --no-deps -e .
  echo "$want" > "$STAMP"
fi

if [[ $WITH_TEST == 1 ]] && [[ ! -x /usr/bin/chromium ]]; then
  # The browser test drives Debian's Chromium (never a downloaded browser).
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup_env: installing Debian's chromium with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null
  else
    echo "setup_env: /usr/bin/chromium is missing; install Debian's chromium package" >&2
    exit 1
  fi
fi
