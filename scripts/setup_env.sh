#!/usr/bin/env bash
# Create (if missing) and update the course's virtual environment `.venv`.  Idempotent: when
# requirements.txt and pyproject.toml have not changed since the last run it only checks.
# Usage: bash scripts/setup_env.sh [--test]   (--test also installs the browser for the tests)
# Environment: PYTHON (interpreter for a new .venv: Python 3.11, 3.12 or 3.13; default: the newest
#                      of python3.13, python3.12, python3.11, python3 that runs and is supported),
#              TORCH_INDEX_URL (optional extra index for torch, e.g. the PyTorch CPU index).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1
SUPPORTED=(3.11 3.12 3.13)
SUPPORTED_TEXT="Python 3.11, 3.12 or 3.13"

# major.minor of an interpreter, or nothing if it does not run (e.g. a pyenv shim of a version
# that is installed but not selected).
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }
is_supported() { local v; for v in "${SUPPORTED[@]}"; do [[ "$1" == "$v" ]] && return 0; done; return 1; }

if [[ -n "${PYTHON:-}" ]]; then
  want_version=$(py_version "$PYTHON")
  if [[ -z "$want_version" ]]; then
    echo "setup_env: PYTHON=$PYTHON does not run; the course needs $SUPPORTED_TEXT" >&2
    exit 1
  fi
  if ! is_supported "$want_version"; then
    echo "setup_env: PYTHON=$PYTHON is Python $want_version; the course needs $SUPPORTED_TEXT" >&2
    exit 1
  fi
fi

if [[ -x "$VENV/bin/python" ]]; then
  venv_version=$(py_version "$VENV/bin/python")
  if [[ -z "$venv_version" ]]; then
    echo "setup_env: $VENV is broken (its python does not run); remove it (rm -rf .venv) and run again" >&2
    exit 1
  fi
  if [[ -n "${PYTHON:-}" && "$venv_version" != "$want_version" ]]; then
    echo "setup_env: $VENV was made with Python $venv_version, not $want_version (PYTHON=$PYTHON);" \
      "remove it (rm -rf .venv) to rebuild it with $want_version, or unset PYTHON to keep it" >&2
    exit 1
  fi
  if ! is_supported "$venv_version"; then
    echo "setup_env: $VENV was made with Python $venv_version; the course needs $SUPPORTED_TEXT;" \
      "remove it (rm -rf .venv) and run again" >&2
    exit 1
  fi
  echo "setup_env: $VENV uses Python $venv_version"
else
  if [[ -z "${PYTHON:-}" ]]; then
    tried=()
    for candidate in python3.13 python3.12 python3.11 python3; do
      version=$(py_version "$candidate")
      tried+=("$candidate${version:+ ($version)}")
      if [[ -n "$version" ]] && is_supported "$version"; then
        PYTHON=$candidate
        want_version=$version
        break
      fi
    done
    if [[ -z "${PYTHON:-}" ]]; then
      echo "setup_env: no supported Python found (tried: ${tried[*]}); install $SUPPORTED_TEXT" \
        "or set PYTHON=/path/to/python3.X" >&2
      exit 1
    fi
  fi
  echo "setup_env: creating $VENV with $PYTHON (Python $want_version)"
  if ! "$PYTHON" -m venv "$VENV"; then
    # Debian's and Ubuntu's Pythons need the python3.X-venv package for ensurepip.
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
      rm -rf "$VENV"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$want_version-venv" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
      "$PYTHON" -m venv "$VENV"
    else
      rm -rf "$VENV"
      echo "setup_env: '$PYTHON -m venv' failed; install python$want_version-venv" >&2
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
