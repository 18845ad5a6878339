#!/usr/bin/env bash
# Build the git-ignored folder .carry/ that scripts/device/gpu.sh needs on a lent GPU machine
# (Python 3.12, no internet).  Run from the repository root on a machine with PyPI access.
#   .carry/whl/          mace-torch 0.3.16, e3nn 0.4.4, ase, cuequivariance(-torch) 0.13 ... (~6 MB)
#   .carry/ops.tar.xz    cuequivariance-ops(-torch)-cu13 0.13 unpacked under site/, without the
#                        triton kernel cache, xz-compressed (~29 MB; the two wheels are ~71 MB)
#   .carry/rmd17/        the two rMD17 ethanol split-01 files (1.3 MB)
# A device call carries at most 64 MiB *including* the repository's tracked files, so the script
# prints the total.  If it is over, carry .carry/whl and .carry/rmd17 in one call and
# .carry/ops.tar.xz in the next: `gpu.sh setup` installs whatever has arrived.
set -euo pipefail
WHEELS=${WHEELS_SCRIPT:-../shared/device/wheels.sh}
DATA=${ACECOURSE_RMD17_DIR:-../shared/data/rmd17}
[ -f "$WHEELS" ] || { echo "error: $WHEELS not found (set WHEELS_SCRIPT)" >&2; exit 2; }
for split in train test; do
  [ -f "$DATA/rmd17_ethanol_${split}_01.npz" ] || {
    echo "error: $DATA/rmd17_ethanol_${split}_01.npz not found (set ACECOURSE_RMD17_DIR)" >&2; exit 2; }
done
mkdir -p .git/info
bash "$WHEELS" > /dev/null
rm -rf .carry && mkdir -p .carry/whl .carry/rmd17
cp .whl/base/*.whl .carry/whl/
stage=$(mktemp -d)
mkdir "$stage/site"
for wheel in .whl/ops/*.whl .whl/ops-core/*.whl; do unzip -q -o "$wheel" -d "$stage/site"; done
rm -rf "$stage"/site/cuequivariance_ops/triton/cache/*
tar -C "$stage" -cf - site | xz -T2 -6 > .carry/ops.tar.xz
rm -rf "$stage"
cp "$DATA"/rmd17_ethanol_{train,test}_01.npz .carry/rmd17/
du -sh .carry/*
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carry=$(du -sb .carry | cut -f1)
echo "tracked files $((tracked / 1048576)) MiB + .carry $((carry / 1048576)) MiB = $(((tracked + carry) / 1048576)) MiB (limit 64 MiB per call)"
