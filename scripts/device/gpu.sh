#!/usr/bin/env bash
# The course's GPU work, one device call per command (runbook: scripts/device/README.md).
# The lent machine has Python 3.12 and torch with CUDA, no internet, and starts bare; the wheels,
# the rMD17 files and the commit travel in the git-ignored .carry/ (scripts/device/make_carry.sh).
#
#   bash scripts/device/gpu.sh window SECONDS [KEY=VALUE ...]
#       One window of the chain: install, take the chain's newest weights from the repository,
#       train one warm-restart cycle fitted into SECONDS (counted from the start of this script),
#       test the best validation EMA weights in float64 on the 1,000 test frames, and write the
#       window's 7 files and the grown chain.csv under $OUT in the repository's layout
#       (artifacts/mace_ethanol/chain/...).  KEY=VALUE: training settings (e.g. batch_size=20).
#   bash scripts/device/gpu.sh bench
#       Step times, side by side: the course's backends (BACKENDS, default e3nn, e3nn+graph,
#       e3nn+compile+graph) and stock mace_run_train, each in its own process (TIMEOUT s each).
#   bash scripts/device/gpu.sh compare SECONDS [KEY=VALUE ...]
#       Batch 5 against batch 20 at equal wall time: two cycles, one after the other, from the
#       chain's newest weights, each half of SECONDS; their curves and the verdict under $OUT.
# WITH_CUEQ=1 also installs the cuEquivariance ops, carried in a call of their own before
# (.carry-ops, see the README); without them the cueq backends record an error and the rest run.
set -euo pipefail
T0=$(date +%s)
SITE=${SITE:-/tmp/site}        # where the wheels are installed (kept while the machine is warm)
OUT=${OUT:-/tmp/out}
PROFILE=${PROFILE:-full}       # the tests run the same command on the CPU with PROFILE=ci
CHAIN=artifacts/mace_ethanol/chain
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 ACECOURSE_RMD17_DIR=$PWD/.carry/rmd17
if [ -f .carry/commit ]; then export ACECOURSE_GIT_COMMIT; ACECOURSE_GIT_COMMIT=$(cat .carry/commit); fi
mkdir -p "$OUT"

install() {
  [ -d .carry/whl ] && [ -d .carry/rmd17 ] || {
    echo "error: .carry/whl or .carry/rmd17 did not arrive: run bash scripts/device/make_carry.sh here, then carry .carry" >&2
    exit 2; }
  if [ ! -f $SITE/.base ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target $SITE .carry/whl/*.whl
    touch $SITE/.base
  fi
  if [ "${WITH_CUEQ:-0}" = 1 ] && [ ! -f $SITE/.ops ]; then
    [ -f .carry-ops/ops.tar.xz ] || { echo "error: WITH_CUEQ=1 but .carry-ops/ops.tar.xz did not arrive" >&2; exit 2; }
    tar -xJf .carry-ops/ops.tar.xz -C /tmp
    touch $SITE/.ops
  fi
  python3 -c "import torch, e3nn, mace; print('torch', torch.__version__, '| e3nn', e3nn.__version__, \
'| mace', mace.__version__, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
  echo "installed after $(( $(date +%s) - T0 )) s; commit ${ACECOURSE_GIT_COMMIT:-unknown}"
}

check_returned() {  # the returned files: at most 8, each at most 16 MiB
  find "$OUT" -type f -printf '%s %P\n' | sort -k2 | awk '{ printf "%8.2f MiB  %s\n", $1 / 1048576, $2;
    n++; if ($1 > 16 * 1048576) big++ } END { printf "%d files\n", n;
    if (n > 8 || big) { print "error: more than 8 files or one over 16 MiB" > "/dev/stderr"; exit 1 } }'
}

case "${1:-}" in
  window)
    [ $# -ge 2 ] || { echo "usage: $0 window SECONDS [KEY=VALUE ...]" >&2; exit 2; }
    seconds=$2; shift 2
    install
    rc=0
    log=$(mktemp)
    python3 -m acecourse.training window --profile "$PROFILE" --out "$OUT" --until $((T0 + seconds)) \
      --started "$T0" --reserve "${RESERVE:-45}" --set "$@" > "$log" 2>&1 || rc=$?
    dir=$(ls -d "$OUT/$CHAIN"/window* 2>/dev/null | tail -1)
    if [ $rc -ne 0 ] || [ -z "$dir" ]; then
      cp "$log" "$OUT/window_failed.log"
      tail -25 "$log"
      exit $((rc == 0 ? 1 : rc))
    fi
    grep -v -e 'visitor(node)' -e 'TorchScript type system' "$log" > "$dir/window.log" || true
    grep -e 'window plan' "$dir/window.log" || true
    tail -2 "$OUT/$CHAIN/chain.csv"
    check_returned
    echo "window done after $(( $(date +%s) - T0 )) s"
    ;;
  bench)
    install
    python3 -m acecourse.training benchmark --profile "$PROFILE" --steps "${STEPS:-60}" \
      --backends "${BACKENDS:-e3nn,e3nn+graph,e3nn+compile+graph,stock}" --timeout "${TIMEOUT:-150}" \
      --out "$OUT/benchmark.json" 2>&1 | grep -v -e 'visitor(node)' -e 'TorchScript type' | tee "$OUT/benchmark.log"
    check_returned
    ;;
  compare)
    [ $# -ge 2 ] || { echo "usage: $0 compare SECONDS [KEY=VALUE ...]" >&2; exit 2; }
    seconds=$2
    install
    half=$(( (T0 + seconds - $(date +%s)) / 2 ))
    dest="$OUT/artifacts/mace_ethanol/batch_compare"
    mkdir -p "$dest"
    for b in 5 20; do
      python3 -m acecourse.training window --profile "$PROFILE" --out /tmp/cmp/b$b --seconds $half \
        --reserve "${RESERVE:-45}" --set batch_size=$b "${@:3}" > /tmp/cmp_b$b.log 2>&1 || tail -20 /tmp/cmp_b$b.log
      src=$(ls -d /tmp/cmp/b$b/$CHAIN/window* 2>/dev/null | tail -1)
      if [ -n "$src" ]; then
        mkdir -p "$dest/batch$b"
        cp "$src"/{config.json,metrics.csv,run.json} "$dest/batch$b/"
        cp /tmp/cmp/b$b/$CHAIN/chain.csv /tmp/cmp_chain_b$b.csv
      fi
    done
    python3 -m acecourse.training compare "$dest"/batch5 "$dest"/batch20 > "$dest/comparison.json" || true
    { head -1 /tmp/cmp_chain_b5.csv; tail -n 1 -q /tmp/cmp_chain_b5.csv /tmp/cmp_chain_b20.csv; } \
      > "$dest/chain_rows.csv" 2>/dev/null || true
    cat "$dest/comparison.json"
    check_returned
    ;;
  *) echo "usage: $0 window SECONDS [KEY=VALUE ...] | bench | compare SECONDS" >&2; exit 2 ;;
esac
