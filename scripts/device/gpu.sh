#!/usr/bin/env bash
# The course's GPU work, one device call per command (runbook: scripts/device/README.md).
# The lent machine has Python 3.12 and torch with CUDA, no internet, and starts bare; the wheels,
# the rMD17 files and the commit travel in the git-ignored .carry/ (scripts/device/make_carry.sh).
# A device call returns at most 8 files from $OUT, each at most 16 MiB, no more than 2 folders
# down ($OUT/a/b/file), named in A-Z a-z 0-9 . _ - alone: every command writes flat, and checks.
#
#   bash scripts/device/gpu.sh window SECONDS [KEY=VALUE ...]
#       One window of the chain: install, take the chain's newest weights from the repository,
#       train one warm-restart cycle fitted into SECONDS (counted from the start of this script),
#       test the best validation EMA weights in float64 on the 1,000 test frames, and write
#       $OUT/windowNN/ (7 files) and the grown $OUT/chain.csv; `python scripts/device/window.py
#       land FILES` puts them into the repository.  KEY=VALUE: training settings (e.g. batch_size=20).
#       The log goes to $OUT/window.log as it is written, so that it comes back even when the call
#       is cut off; on a failure it is $OUT/window_failed.log.  A safety net: SIGTERM at
#       SECONDS + 10 s (the window then ends after its epoch, evaluated), SIGKILL 35 s later.
#   bash scripts/device/gpu.sh bench [SECONDS]
#       Step times, side by side: the course's backends (BACKENDS, default e3nn, e3nn+graph,
#       e3nn+compile+graph) and stock mace_run_train, each in its own process with TIMEOUT s
#       (default: what is left of SECONDS, default 540, shared equally among the backends).
#   bash scripts/device/gpu.sh compare SECONDS [KEY=VALUE ...]
#       Batch 5 against batch 20 at equal wall time: two cycles, one after the other, from the
#       chain's newest weights, each half of SECONDS; $OUT/batch5/, $OUT/batch20/ (config.json,
#       metrics.csv, run.json), comparison.json and chain_rows.csv.
#   bash scripts/device/gpu.sh check
#       List what a call would return from $OUT; fail if any of it would not come back.
# The cuEquivariance ops are not carried (measured unusable on the H200): cueq backends record
# an error and the rest run.
set -euo pipefail
T0=$(date +%s)
SITE=${SITE:-/tmp/site}        # where the wheels are installed (kept while the machine is warm)
OUT=${OUT:-/tmp/out}
PROFILE=${PROFILE:-full}       # the tests run the same command on the CPU with PROFILE=ci
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1  # rMD17 split 01: the tree's acecourse/data
# the commit the windows record: one set in the command wins over .carry/commit
if [ -z "${ACECOURSE_GIT_COMMIT:-}" ] && [ -f .carry/commit ]; then
  export ACECOURSE_GIT_COMMIT; ACECOURSE_GIT_COMMIT=$(cat .carry/commit)
fi
mkdir -p "$OUT"
NOISE=(-e 'visitor(node)' -e 'TorchScript type system')  # e3nn's TorchScript warnings

install() {  # every failure returns non-zero (set -e does not act inside `install || ...`)
  if [ ! -d .carry/whl ]; then
    echo "error: .carry/whl did not arrive: run bash scripts/device/make_carry.sh here, then carry .carry" >&2
    return 2
  fi
  if [ ! -f "$SITE/.base" ]; then
    python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --target "$SITE" .carry/whl/*.whl \
      || { echo "error: pip could not install .carry/whl" >&2; return 2; }
    touch "$SITE/.base"
  fi
  if [ -f .carry/wheels.txt ]; then echo "carried: $(tr '\n' ' ' < .carry/wheels.txt)"; fi
  python3 -c "import torch, e3nn, mace, pydantic; print('torch', torch.__version__, '| e3nn', e3nn.__version__, \
'| mace', mace.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" \
    || { echo "error: the installed packages do not import" >&2; return 2; }
  echo "installed after $(( $(date +%s) - T0 )) s; commit ${ACECOURSE_GIT_COMMIT:-unknown}"
}

check_returned() {  # list what comes back from $OUT (at most 8 plain files of <= 16 MiB, 64 MiB
  # in all, 2 folders down, names of A-Z a-z 0-9 . _ -); non-zero, one line, if any would not
  local bad n total
  bad=$(export LC_ALL=C; {
    find "$OUT" -mindepth 4 -type f -printf '%P: more than 2 folders down\n'
    find "$OUT" -mindepth 1 -name '*[!A-Za-z0-9._-]*' -printf '%P: a name other than A-Z a-z 0-9 . _ -\n'
    find "$OUT" -type f -size +16M -printf '%P: over 16 MiB\n'
    find "$OUT" -mindepth 1 ! -type f ! -type d -printf '%P: not a plain file\n'
  } | sort | paste -sd ';' - | sed 's/;/; /g')
  n=$(find "$OUT" -type f | wc -l)
  total=$(find "$OUT" -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
  [ "$n" -le 8 ] || bad="${bad:+$bad; }$n files (at most 8)"
  [ "$total" -le $((64 * 1048576)) ] || bad="${bad:+$bad; }$total bytes (at most 64 MiB)"
  if [ -n "$bad" ]; then echo "error: $OUT: would not all come back: $bad" >&2; return 1; fi
  find "$OUT" -type f -printf '%s %P\n' | LC_ALL=C sort -k2 | awk '{ printf "%8.2f MiB  %s\n", $1 / 1048576, $2 }'
  echo "$n files, $(awk -v t="$total" 'BEGIN { printf "%.2f", t / 1048576 }') MiB: all come back"
}

case "${1:-}" in
  window)
    [ $# -ge 2 ] || { echo "usage: $0 window SECONDS [KEY=VALUE ...]" >&2; exit 2; }
    seconds=$2; shift 2
    log="$OUT/window.log"  # written as it goes: it comes back even if the call is cut off
    fail() {  # keep the log as window_failed.log, show its end and what comes back, exit $1
      mv "$log" "$OUT/window_failed.log"
      grep -v "${NOISE[@]}" "$OUT/window_failed.log" | tail -25 || true
      ls -l "$OUT"
      echo "window failed after $(( $(date +%s) - T0 )) s (exit code $1)"
      exit "$1"
    }
    rc=0
    install > "$log" 2>&1 || rc=$?
    cat "$log"
    [ $rc -eq 0 ] || fail $rc
    left=$(( T0 + seconds + 10 - $(date +%s) ))
    timeout --preserve-status -k 35 -s TERM $(( left > 1 ? left : 1 )) \
      python3 scripts/device/window.py window --profile "$PROFILE" --out "$OUT" --until $((T0 + seconds)) \
      --started "$T0" --reserve "${RESERVE:-45}" --set "$@" >> "$log" 2>&1 || rc=$?
    shopt -s nullglob; dirs=("$OUT"/window[0-9]*); shopt -u nullglob
    if [ $rc -ne 0 ] || [ ${#dirs[@]} -ne 1 ] || [ ! -f "$OUT/chain.csv" ]; then
      fail $(( rc == 0 ? 1 : rc ))
    fi
    grep -v "${NOISE[@]}" "$log" > "${dirs[0]}/window.log" || true
    rm "$log"
    grep -e 'time plan' -e '^warning' "${dirs[0]}/window.log" || true
    tail -n 1 "$OUT/chain.csv"
    check_returned
    echo "window done after $(( $(date +%s) - T0 )) s"
    ;;
  bench)
    total=${2:-540}
    install
    backends=${BACKENDS:-e3nn,e3nn+graph,e3nn+compile+graph,stock}
    n=$(( $(tr -cd , <<< "$backends" | wc -c) + 1 ))
    each=${TIMEOUT:-$(( (T0 + total - $(date +%s)) / n ))}
    echo "$n backends, at most $each s each"
    python3 scripts/benchmark.py --profile "$PROFILE" --steps "${STEPS:-60}" \
      --backends "$backends" --timeout "$each" --out "$OUT/benchmark.json" 2>&1 \
      | grep -v "${NOISE[@]}" | tee "$OUT/benchmark.log"
    check_returned
    ;;
  compare)
    [ $# -ge 2 ] || { echo "usage: $0 compare SECONDS [KEY=VALUE ...]" >&2; exit 2; }
    seconds=$2; shift 2
    install
    half=$(( (T0 + seconds - $(date +%s)) / 2 ))
    rm -rf /tmp/cmp
    for b in 5 20; do
      log="$OUT/compare_batch$b.log"  # kept only if this half fails
      rc=0
      timeout --preserve-status -k 35 -s TERM $((half + 10)) \
        python3 scripts/device/window.py window --profile "$PROFILE" --out /tmp/cmp/b$b --until $(( $(date +%s) + half )) \
        --reserve "${RESERVE:-45}" --set batch_size=$b "$@" > "$log" 2>&1 || rc=$?
      shopt -s nullglob; src=(/tmp/cmp/b$b/window[0-9]*); shopt -u nullglob
      if [ $rc -eq 0 ] && [ ${#src[@]} -eq 1 ]; then
        mkdir -p "$OUT/batch$b"
        cp "${src[0]}"/{config.json,metrics.csv,run.json} "$OUT/batch$b/"
        rm "$log"
      else
        echo "batch $b failed (exit code $rc):"; grep -v "${NOISE[@]}" "$log" | tail -20 || true
      fi
    done
    if [ -d "$OUT/batch5" ] && [ -d "$OUT/batch20" ]; then
      python3 scripts/device/window.py compare "$OUT/batch5" "$OUT/batch20" > "$OUT/comparison.json" \
        || { rm -f "$OUT/comparison.json"; echo "error: the comparison failed" >&2; }
      { head -n 1 /tmp/cmp/b5/chain.csv; tail -n 1 -q /tmp/cmp/b5/chain.csv /tmp/cmp/b20/chain.csv; } \
        > "$OUT/chain_rows.csv"
      cat "$OUT/comparison.json"
    fi
    check_returned
    ;;
  check) check_returned ;;
  *) echo "usage: $0 window SECONDS [KEY=VALUE ...] | bench [SECONDS] | compare SECONDS | check" >&2; exit 2 ;;
esac
