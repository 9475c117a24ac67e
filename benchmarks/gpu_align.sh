#!/usr/bin/env bash
# The alignment measurements that need a GPU, in one short lease (the package importable -- installed, or this
# checkout on PYTHONPATH --, the embedded SmolLM2 installed, amazon-art-office and ml-100k-msr converted in DATA):
#
#     bash benchmarks/gpu_align.sh OUT_DIR [SECONDS] [LANES]
#
# LANES (comma-separated, default both) at the same time:
# listwise  llm4msr-align --tasks=listwise on amazon-art-office with the CPU runs' settings (sessions 17-18:
#           --max_history=3 --learning_rate=1e-3, LoRA r=8 on every linear layer, batches of 8; bf16 on the GPU), as
#           many of MAX_SAMPLES (default 20,000) samples as a fine-tuning budget allows (--max_train_seconds=
#           TRAIN_SECONDS, default SECONDS - 240), ranked on the CPU runs' 500 validation cases (--eval_users=500,
#           seed 0). OUT/listwise-model.tgz: eval.json, loss.png and model/ without its merged weights (manifest,
#           tokenizer, adapter/): unpacked as --out elsewhere, the same llm4msr-align command rebuilds the weights.
# scale     a random-weight model of SCALE_SHAPE (default qwen2-0.5b; benchmarks/scale_llm.py): the listwise
#           alignment with SCALE_SAMPLES (default 160) samples and 50 cases ranked, then llm4msr-knowledge on
#           ml-100k-msr with it: the time and memory of a larger model through the same commands (never quality).
# OUT/steps.tsv: step, exit code, seconds; OUT/gpu-memory.csv: the GPU's used memory every second.
set -u
. "$(dirname "$0")/gpu_lib.sh"  # lease_start, has, left, step, wait_for, environment
lease_start gpu_align.sh listwise,scale "$@"
DATA=$(cd "${DATA:-$ROOT/dataset}" && pwd)
TRAIN_SECONDS=${TRAIN_SECONDS:-$(( BUDGET - 240 ))}

environment
cat "$OUT/env.txt"
nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader -l 1 > "$OUT/gpu-memory.csv" 2>/dev/null &
SMI=$!
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of the script with small numbers (MAX_SAMPLES, EVAL_USERS, SCALE_SHAPE=tiny)
ALIGN="python3 -m recbole_llm4msr.align.cli --dataset=amazon-art-office --data_path=$DATA/ --device=$DEVICE
  --tasks=listwise --max_history=3 --learning_rate=1e-3 --seed=0"

lane_listwise() {
  step listwise $(( BUDGET - 30 )) $ALIGN --out="$OUT/listwise" --max_samples="${MAX_SAMPLES:-20000}" \
    --eval_users="${EVAL_USERS:-500}" --max_train_seconds="$TRAIN_SECONDS"
  [ -f "$OUT/listwise/model/manifest.json" ] && tar czf "$OUT/listwise-model.tgz" -C "$OUT" --exclude='listwise/model/model*.safetensors' \
    listwise/model listwise/eval.json listwise/loss.png
}

lane_scale() {
  local shape=${SCALE_SHAPE:-qwen2-0.5b}
  step scale-model 120 python3 "$ROOT/benchmarks/scale_llm.py" --shape "$shape" --out "$OUT/scale/$shape" \
    --device "$DEVICE" || return
  step scale-align 200 $ALIGN --llm="$OUT/scale/$shape" --out="$OUT/scale/align" \
    --max_samples="${SCALE_SAMPLES:-160}" --eval_users="${SCALE_EVAL_USERS:-50}"
  step scale-knowledge 150 python3 -m recbole_llm4msr.knowledge.cli --dataset=ml-100k-msr --data_path="$DATA/" \
    --llm="$OUT/scale/$shape" --device="$DEVICE"
}

PIDS=""
if has listwise; then lane_listwise & PIDS="$PIDS $!"; fi
if has scale; then lane_scale & PIDS="$PIDS $!"; fi
wait $PIDS
kill $SMI 2>/dev/null
cat "$OUT/steps.tsv"
