#!/usr/bin/env bash
# How the chapter's GPU runs were made, on a lent H100 with no internet (steps in
# scripts/device/README.md; results in artifacts/mace_ethanol/).  The machine has Python 3.12 and torch (CUDA); the
# wheels of mace-torch 0.3.16, e3nn 0.4.4, cuequivariance 0.13 and the rMD17 files travel in the
# git-ignored folder .carry/ (whl/, ops.tar.xz, rmd17/), built by scripts/device/make_carry.sh.
#   bash scripts/device/gpu.sh setup            install into /tmp/site (once per machine)
#   bash scripts/device/gpu.sh bench            e3nn vs cuEquivariance step times -> $OUT
#   bash scripts/device/gpu.sh train WALL SEEDS [--set ...]   train/resume runs for WALL seconds
# A full run needs several device sessions, and a fresh machine starts bare.  The checkpoint of
# one seed (76.8 MB, 63.3 MB packed) leaves a machine in one command as 5 compressed parts of
# <= 15 MiB (a command returns 8 files of 16 MiB, 64 MiB in all) and goes back in two calls,
# because a call carries 64 MiB *including* the ~30 MB repository: put the returned parts into
# the git-ignored folders .ckpt/seedS/a (manifest, part00, part01) and .ckpt/seedS/b (the rest),
# carry .ckpt/seedS/a in one call and .ckpt/seedS/b in the next (a warm machine keeps both).
#   bash scripts/device/gpu.sh pack SEEDS          checkpoint -> /tmp/packs/seedS (parts + manifest)
#   bash scripts/device/gpu.sh fetch SEED          manifest + parts -> $OUT/seedS
#   bash scripts/device/gpu.sh restore SEED        .ckpt/seedS/** (carried) -> /tmp/runs/seedS
set -euo pipefail
SITE=/tmp/site
RUNS=/tmp/runs
export PYTHONPATH=$SITE:$PWD
export ACECOURSE_RMD17_DIR=$PWD/.carry/rmd17
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" "$RUNS"
case "$1" in
  setup)
    # installs what has arrived; .carry may come in one call or in two (see make_carry.sh)
    if [ -d .carry/whl ] && [ ! -f $SITE/.base ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target $SITE .carry/whl/*.whl
      touch $SITE/.base
    fi
    if [ -f .carry/ops.tar.xz ] && [ ! -f $SITE/.ops ]; then
      tar -xJf .carry/ops.tar.xz -C /tmp
      touch $SITE/.ops
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import importlib.util as u, torch, e3nn, mace; \
print('torch', torch.__version__, 'e3nn', e3nn.__version__, torch.cuda.get_device_name(), \
'cuEquivariance ops', 'installed' if u.find_spec('cuequivariance_ops_torch') else 'not yet (carry .carry/ops.tar.xz)')"
    ;;
  bench)
    python3 -m acecourse.training benchmark --profile full --steps ${STEPS:-60} \
      --backends ${BACKENDS:-e3nn,e3nn+graph,cueq} --out "$OUT/benchmark.json" > $RUNS/bench.log 2>&1 || true
    python3 -c "import json; d=json.load(open('$OUT/benchmark.json')); [print(k, {a: b for a, b in v.items() if a != 'losses'}) for k, v in d['backends'].items()]; print({k: v for k, v in d.items() if k.startswith(('speed', 'graph', 'max_abs'))})" || tail -30 $RUNS/bench.log
    ;;
  train)
    wall=$2; seeds=$3; shift 3
    pids=()
    for seed in ${seeds//,/ }; do
      python3 -m acecourse.training train --profile full --out $RUNS/seed$seed \
        --set seed=$seed max_wall_s=$wall progress=false "$@" > $RUNS/seed$seed.log 2>&1 &
      pids+=($!)
    done
    rc=0
    for pid in "${pids[@]}"; do wait $pid || rc=$?; done
    for seed in ${seeds//,/ }; do
      tail -5 $RUNS/seed$seed.log
      tail -3 $RUNS/seed$seed/metrics.csv || true
      tar -cf "$OUT/seed$seed.tar" -C $RUNS --exclude checkpoint.pt --exclude '*.tmp' seed$seed seed$seed.log
    done
    exit $rc
    ;;
  pack)
    for seed in ${2//,/ }; do
      python3 -m acecourse.training pack $RUNS/seed$seed /tmp/packs/seed$seed | head -4
      ls -l /tmp/packs/seed$seed
    done
    ;;
  fetch)
    seed=$2; mkdir -p "$OUT/seed$seed"
    cp /tmp/packs/seed$seed/checkpoint.* "$OUT/seed$seed/"
    ls -l "$OUT/seed$seed"
    ;;
  restore)
    python3 -m acecourse.training unpack .ckpt/seed$2 $RUNS/seed$2 | head -4
    ;;
  *) echo "usage: $0 setup|bench|train WALL SEEDS|pack SEEDS|fetch SEED|restore SEED" >&2; exit 2 ;;
esac
