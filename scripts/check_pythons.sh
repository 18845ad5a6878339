#!/usr/bin/env bash
# Run the README's two commands with every supported Python found, each in a fresh clone of this
# repository's HEAD, and print a table: Python, set-up time, book build, the browser test of the
# site that build_book.sh made (the published variant: notebooks executed without ACECOURSE_CI;
# TEST_SITE_HTML=_build/html pytest tests/test_site.py), tests passed/failed.  Before that, a
# network check of the rMD17 download (informational, it does not change the exit status): one
# per-split file that the package does not ship (ethanol train split 02, about 0.7 MB) fetched
# with pooch from acecourse.data.rmd17.SPLIT_FILES_URL into a temporary folder and checked
# against its SHA-256 in the package's registry.txt.  The chapters need no download: ethanol
# split 01 ships with the package, so the clones need no data folder either.
# Not part of .ci/run (CI has one interpreter).  Each Python takes about half an hour of both
# cores of a 2-core machine (the book executes every notebook, the tests execute them again) and
# ~6 GB of disk while it runs (torch; a CUDA build where pip takes torch from PyPI).
#
# Usage: bash scripts/check_pythons.sh [PYTHON ...]
#   With no argument: for each of 3.11, 3.12 and 3.13, python3.X on PATH if it runs, else the
#   newest pyenv build ($(pyenv root)/versions/3.X.*/bin/python3.X).
# Environment: CHECK_DIR   folder for the clones and logs (default: a new folder in ${TMPDIR:-/tmp})
#              KEEP=1      keep each clone and its .venv (default: delete them, keep the logs)
#              TORCH_INDEX_URL      passed on to scripts/setup_env.sh
# Exits non-zero if any Python failed a step.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
COMMIT=$(git rev-parse HEAD)
CHECK_DIR=${CHECK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/acecourse-check-pythons.XXXXXX")}
mkdir -p "$CHECK_DIR"

runs() { "$1" -c 'import sys' >/dev/null 2>&1; }
find_python() {  # newest working interpreter of version $1, or nothing
  local v=$1 candidate
  if command -v "python$v" >/dev/null 2>&1 && runs "python$v"; then
    command -v "python$v"
    return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in $(ls -d "$(pyenv root)/versions/$v".* 2>/dev/null | sort -V -r); do
      if runs "$candidate/bin/python$v"; then
        echo "$candidate/bin/python$v"
        return
      fi
    done
  fi
}

pythons=("$@")
if [[ ${#pythons[@]} == 0 ]]; then
  for v in 3.11 3.12 3.13; do
    found=$(find_python "$v")
    if [[ -n "$found" ]]; then pythons+=("$found"); else echo "check_pythons: no Python $v found"; fi
  done
fi
if [[ ${#pythons[@]} == 0 ]]; then
  echo "check_pythons: no supported Python found (3.11, 3.12, 3.13)" >&2
  exit 1
fi

echo "check_pythons: commit $COMMIT, clones and logs in $CHECK_DIR"
echo "== rMD17 per-split download (network check, informational)"
# one split file the package does not ship, from the per-split files, checked; no fallback to
# the 1 GB archive here (acecourse.data.rmd17.fetch_rmd17 would take it)
FETCH_SPLIT='
import sys, tempfile, pooch
from acecourse.data import rmd17
name = rmd17.split_file_name("ethanol", "train", 2)
url, known_hash = rmd17.SPLIT_FILES_URL + name, "sha256:" + rmd17.REGISTRY[name][0]
with tempfile.TemporaryDirectory() as folder:
    try:
        pooch.retrieve(url, known_hash, fname=name, path=folder)
    except (OSError, ValueError) as error:  # requests errors are OSErrors; a bad hash is not
        sys.exit(f"{url}: {error}")
print(f"{url}: downloaded, SHA-256 checked")
'
if [[ -x "$ROOT/.venv/bin/python" ]]; then
  "$ROOT/.venv/bin/python" -c "$FETCH_SPLIT" 2>&1 | tee "$CHECK_DIR/rmd17-download.log"
  check_status=${PIPESTATUS[0]}
  rmd17_download="OK"
  [[ $check_status != 0 ]] && rmd17_download="FAILED (no network? see the log)"
else
  rmd17_download="not run (no .venv in $ROOT)"
fi
[[ -n "$(git status --porcelain --untracked-files=no)" ]] &&
  echo "check_pythons: note: uncommitted changes in $ROOT are not part of the check"
FORMAT='%-8s %-13s %-18s %-22s %-38s %-16s %s'
rows=()
failed=0
for python in "${pythons[@]}"; do
  version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || {
    echo "check_pythons: $python does not run" >&2
    rows+=("$(printf "$FORMAT" '?' 'FAILED' '-' '-' "$python does not run" '-' '-')")
    failed=1
    continue
  }
  clone="$CHECK_DIR/py$version"
  log="$CHECK_DIR/py$version"
  rm -rf "$clone"
  git clone -q "$ROOT" "$clone" && git -C "$clone" checkout -q "$COMMIT"
  echo "== Python $version ($python): set-up"
  start=$SECONDS
  (cd "$clone" && PYTHON="$python" bash scripts/setup_env.sh --test) >"$log-setup.log" 2>&1
  setup_status=$?
  setup_s=$((SECONDS - start))
  torch="-"
  size="-"
  build="not run"
  site="not run"
  tests="not run"
  if [[ $setup_status == 0 ]]; then
    torch=$("$clone/.venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null)
    size=$(du -sh "$clone/.venv" | cut -f1)
    echo "== Python $version: bash scripts/build_book.sh"
    start=$SECONDS
    (cd "$clone" && PYTHON="$python" bash scripts/build_book.sh) >"$log-build.log" 2>&1
    build_status=$?
    build_s=$((SECONDS - start))
    if [[ $build_status == 0 ]]; then build="OK ($build_s s)"; else build="FAILED ($build_s s)"; fi
    site_status=0
    if [[ $build_status == 0 ]]; then
      echo "== Python $version: browser test of the built site (TEST_SITE_HTML=_build/html)"
      start=$SECONDS
      (cd "$clone" && TEST_SITE_HTML=_build/html .venv/bin/python -m pytest -q -ra \
        tests/test_site.py) >"$log-site.log" 2>&1
      site_status=$?
      site_s=$((SECONDS - start))
      if [[ $site_status == 0 ]]; then site="OK ($site_s s)"; else site="FAILED ($site_s s)"; fi
    fi
    echo "== Python $version: bash scripts/run_tests.sh"
    start=$SECONDS
    (cd "$clone" && bash scripts/run_tests.sh) >"$log-tests.log" 2>&1
    tests_status=$?
    tests_s=$((SECONDS - start))
    summary=$(grep -E '^=+ .*(passed|failed|error).* in [0-9.]+s' "$log-tests.log" | tail -1)
    passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | cut -d' ' -f1)
    nfailed=$(grep -oE '[0-9]+ failed' <<<"$summary" | cut -d' ' -f1)
    errors=$(grep -oE '[0-9]+ errors?' <<<"$summary" | cut -d' ' -f1)
    tests="${passed:-0} passed, $((${nfailed:-0} + ${errors:-0})) failed ($tests_s s)"
    [[ $tests_status != 0 ]] && tests="$tests, exit $tests_status"
    [[ $build_status != 0 || $site_status != 0 || $tests_status != 0 ]] && failed=1
  else
    failed=1
  fi
  setup="$setup_s s"
  [[ $setup_status != 0 ]] && setup="FAILED ($setup_s s)"
  rows+=("$(printf "$FORMAT" "$version" "$setup" "$build" "$site" "$tests" "${torch:--}" "$size")")
  if [[ "${KEEP:-0}" != 1 ]]; then rm -rf "$clone"; fi
done

echo
echo "check_pythons: commit ${COMMIT:0:12}; logs in $CHECK_DIR/py<version>-{setup,build,site,tests}.log"
echo "rMD17 per-split download: $rmd17_download (log: $CHECK_DIR/rmd17-download.log)"
printf "$FORMAT\n" "Python" "set-up" "build_book.sh" "site (built)" "run_tests.sh" "torch" ".venv"
for row in "${rows[@]}"; do echo "$row"; done
exit $failed
