#!/usr/bin/env bash
# The CTR paths on one CUDA GPU that need no LLM on the machine (the knowledge store travels, built here): NCCL
# distributed training and the cost of LLM4MSR per backbone. Run on a lent machine after the carry of
# `benchmarks/gpu_pack.sh --ctr` (one call: carry [".gpu/ctr"]; the tree sent without benchmarks/results:
# `gpu_pack.sh --results-off` before the calls, `--results-on` after):
#
#     bash benchmarks/gpu_ctr.sh OUT_DIR [SECONDS] [LANES]
#
# With .gpu/ctr present and RecBole not importable, the script first installs its wheels into /tmp/site (RecBole and what it imports that the
# GPU image lacks; pandas 2: the image has pandas 3), unpacks the datasets into DATA (default ./dataset) and the
# stores into the knowledge cache, and puts /tmp/site and this checkout on PYTHONPATH. The image's numpy is 2.x:
# a sitecustomize.py in /tmp/site sets the three numpy-1 names RecBole's Config assigns from (np.float_,
# np.complex_, np.unicode_) before anything imports RecBole -- a device-only shim, not part of the package, which
# pins numpy < 2.
#
# LANES (comma-separated, default both), one after the other (the cost timings are not shared with another lane):
# ddp   ml-100k-msr, DDP_EPOCHS (default 5) epochs: MMoE_LLM4MSR with the carried default store as a one-rank NCCL
#       process group (--nproc=1 --world_size=1: RecBole's DDP path, DistributedSampler, the metrics gathered over
#       NCCL), the same command as one process on the GPU, then stock DeepFM as a one-rank NCCL group; with one GPU
#       visible, --nproc=2 must stop at once with the error naming gpu_id (NCCL refuses two ranks on one GPU, so
#       two-rank NCCL needs two GPUs).
#       Each run's results JSON: OUT/ddp-<name>.json.
# cost  benchmarks/enhancements.py on the GPU, ml-100k-msr, all six backbones, the default `full` generator and the
#       `narrow8` variant (README "Cost"), STAR / AITM / SharedBottom first (the ones over the target on 2 CPU
#       cores); rows are written as each backbone finishes: OUT/enhancements-ml-100k-msr-gpu.{csv,md}.
# OUT/steps.tsv: step, exit code, seconds; OUT/env.txt: GPU, library versions, cores.
set -u
. "$(dirname "$0")/gpu_lib.sh"  # lease_start, has, left, step, environment
lease_start gpu_ctr.sh ddp,cost "$@"
DATA=$(mkdir -p "${DATA:-$ROOT/dataset}" && cd "${DATA:-$ROOT/dataset}" && pwd)
CARRY=$ROOT/.gpu/ctr

if [ -d "$CARRY" ] && ! python3 -c "import recbole" 2>/dev/null; then  # the lent machine: install what travelled
  mkdir -p /tmp/site && cp "$CARRY/sitecustomize.py" /tmp/site/ || exit 3
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/wheels/*.whl || exit 4
  export PYTHONPATH=/tmp/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}
  tar xzf "$CARRY/data.tgz" -C "$DATA" || exit 5
  mkdir -p "$RECBOLE_LLM4MSR_CACHE/knowledge" && tar xzf "$CARRY/stores.tgz" -C "$RECBOLE_LLM4MSR_CACHE/knowledge" || exit 5
fi
environment
cat "$OUT/env.txt"
STORE=$(ls -d "$RECBOLE_LLM4MSR_CACHE"/knowledge/ml-100k-msr/${STORE_NAME:-all-MiniLM-L6-v2-encoder-*}/ 2>/dev/null | head -1)
[ -n "$STORE" ] || { echo "gpu_ctr.sh: no ml-100k-msr store under $RECBOLE_LLM4MSR_CACHE/knowledge (carry it: gpu_pack.sh --ctr)"; exit 2; }
RUN="python3 -m recbole_llm4msr.cli --dataset=ml-100k-msr --data_path=$DATA/ --show_progress=False"

lane_ddp() {
  local epochs=--epochs=${DDP_EPOCHS:-5}
  step ddp-nccl 150 $RUN --model=MMoE_LLM4MSR --knowledge_store="$STORE" $epochs --nproc=1 --world_size=1 \
    --results_file="$OUT/ddp-nccl.json"
  step ddp-single 150 $RUN --model=MMoE_LLM4MSR --knowledge_store="$STORE" $epochs --results_file="$OUT/ddp-single.json"
  step ddp-nccl-deepfm 120 $RUN --model=DeepFM $epochs --nproc=1 --world_size=1 --results_file="$OUT/ddp-nccl-deepfm.json"
  python3 -c "import sys, torch; sys.exit(torch.cuda.device_count() != 1)" || return 0  # (on CPUs nproc=2 is gloo)
  step ddp-two-on-one 60 $RUN --model=DeepFM $epochs --nproc=2
  if grep -q "nproc=2 processes need 2 GPUs" "$OUT/ddp-two-on-one.log"; then
    echo "ddp-two-on-one: refused at once with the gpu_id error, as it should"
  else echo "ddp-two-on-one: NOT the expected error (see ddp-two-on-one.log)"; fi
}
lane_cost() {
  step cost $(( $(left) - 30 )) python3 "$ROOT/benchmarks/enhancements.py" --dataset ml-100k-msr --data_path "$DATA" \
    --knowledge_store "$STORE" --out "$OUT" --tag gpu --epochs "${COST_EPOCHS:-2}" --repeat "${COST_REPEAT:-11}" \
    --backbones ${COST_BACKBONES:-STAR AITM SharedBottom MMoE OMoE PLE} \
    --variant "narrow8:meta_generator=factored,meta_bottom_hidden_sizes=[8],meta_parallel_hidden_sizes=[8]"
}
has ddp && lane_ddp
has cost && lane_cost
cat "$OUT/steps.tsv"
