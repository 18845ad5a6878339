#!/usr/bin/env bash
# Build the git-ignored folder .carry/ that scripts/device/gpu.sh needs on the lent GPU machine
# (Python 3.12, torch with CUDA, no internet), and print what one device call then carries.
# Run from the repository root on a machine with PyPI access; run it again before every window
# (it only refreshes .carry/commit once the wheels are there).
#   .carry/whl/      the wheels pinned in BASE, for Python 3.12, x86-64 (~7 MB): mace-torch,
#                    e3nn and ase at the course's pins (requirements.txt), their other
#                    dependencies at the versions of the course's environment, platformdirs,
#                    cuequivariance(-torch) 0.13 (pure Python), pydantic (acecourse's
#                    settings) with its dependencies and pooch (acecourse.data), neither of
#                    them on the image (image_packages.txt); a wheel of another version is
#                    removed (two versions of one package stop the install)
#   .carry/wheels.txt  name==version of every carried wheel (gpu.sh prints it; a run records
#                    the versions it finds installed in run.json)
#   .carry/commit    the commit the call runs (git rev-parse HEAD, "-dirty" if the tree differs),
#                    which the window records: the device copy of the tree has no .git
# A call carries at most 64 MiB including the tracked files of the repository; the script prints
# the total and fails if .carry and the tree together exceed 60 MiB (4 MiB of room).
set -euo pipefail
# every carried wheel, pinned: a fresh session must carry what ran on the device before
# (tests/test_training_window.py checks these against requirements.txt and the run records)
BASE=(mace-torch==0.3.16 e3nn==0.4.4 ase==3.29.0 opt-einsum-fx==0.1.4 configargparse==1.9.0
      gitpython==3.2.1 gitdb==4.0.12 smmap==5.0.3 lmdb==3.0.0 matscipy==1.3.1 orjson==3.13.0
      prettytable==3.18.0 wcwidth==0.9.4 torch-ema==0.3 platformdirs==4.14.8
      cuequivariance==0.13.0 cuequivariance-torch==0.13.0 pydantic==2.14.4 pydantic-core==2.50.5
      annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 pooch==1.9.0)
PLAT=(--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_31_x86_64
      --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64 --platform manylinux1_x86_64)
get() {  # get DIR PACKAGES...: wheels for the device's Python 3.12 into DIR
  local dir=$1; shift; mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${PLAT[@]}" -d "$dir" "$@"
}
wheel_of() {  # wheel_of NAME==VERSION: the file name of its wheel in .carry/whl, if there
  local prefix f
  prefix=$(tr 'A-Z-' 'a-z_' <<< "${1%%==*}")-${1##*==}-
  for f in .carry/whl/*.whl; do
    if [[ $(basename "$f" | tr 'A-Z' 'a-z') == "$prefix"* ]]; then basename "$f"; return 0; fi
  done
  return 1
}
mkdir -p .carry/whl
rm -rf .carry/rmd17  # an earlier carry's data: rMD17 split 01 travels with the tree
keep=() missing=()
for pin in "${BASE[@]}"; do
  if file=$(wheel_of "$pin"); then keep+=("$file"); else missing+=("$pin"); fi
done
for f in .carry/whl/*.whl; do  # wheels of other versions, or of packages no longer carried
  [ -e "$f" ] || continue
  [[ " ${keep[*]} " == *" $(basename "$f") "* ]] || { echo "removing $(basename "$f")"; rm "$f"; }
done
if [ ${#missing[@]} -gt 0 ]; then get .carry/whl "${missing[@]}"; fi
: > .carry/wheels.txt
for pin in "${BASE[@]}"; do
  wheel_of "$pin" > /dev/null || { echo "error: no wheel for $pin in .carry/whl" >&2; exit 1; }
  echo "$pin" >> .carry/wheels.txt
done
commit=$(git rev-parse HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] || commit="$commit-dirty"
echo "$commit" > .carry/commit
du -sh .carry/*
tracked=$(git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb .carry | cut -f1)
total=$((tracked + ${untracked:-0} + carry))
awk -v t="$tracked" -v u="${untracked:-0}" -v c="$carry" 'BEGIN { m = 1048576;
  printf "one call carries: tracked %.1f MiB + untracked %.1f MiB + .carry %.1f MiB = %.1f MiB (limit 64 MiB)\n",
         t / m, u / m, c / m, (t + u + c) / m }'
echo "commit recorded by the next window: $commit"
[ "$total" -le $((60 * 1048576)) ] || { echo "error: over 60 MiB: see scripts/device/README.md" >&2; exit 1; }
