#!/usr/bin/env bash
# The GPU paths, checked and timed on one CUDA GPU (the package installed, the embedded SmolLM2 installed, the
# console scripts on PATH, ../shared/data or $LLM4MSR_SHARED_DATA holding the amazon-art-office CSVs):
#
#     bash benchmarks/gpu_check.sh OUT_DIR [SECONDS]
#
# 1. knowledge   llm4msr-knowledge for ml-100k-msr on the GPU (bf16) with the knowledge report
# 2. train       run_recbole MMoE_LLM4MSR on the GPU with that store (2 epochs)
# 3. align       llm4msr-align on amazon-art-office on the GPU (2,000 samples; 200 validation users ranked)
# 4. tslrec      benchmarks/compare_tslrec.sh on the GPU, one process per label (the TSLRec pipeline -- pre-training,
#                k-means, SFT, item extraction -- runs inside the first SASRec_TSLRec run; the labels that need its
#                store start when it is finished), merged into one table with llm4msr-compare --merge; learning
#                rates: $LR_GRID (default 0.001 alone, to fit a short lease)
# 1-2, 3 and 4 run at the same time.
#
# Each step has its own time limit and the whole script stops by SECONDS (default 540): what finished is kept
# (the comparison is resumable: the same command continues it). steps.tsv: step, exit code, seconds.
# The caches go to $RECBOLE_LLM4MSR_CACHE (default OUT_DIR/cache).
set -u
. "$(dirname "$0")/gpu_lib.sh"  # lease_start, left, step, wait_for, environment
lease_start gpu_check.sh "" "$@"  # no lanes: everything runs (a third argument is an error)
BIN=$(dirname "$(command -v llm4msr-compare)")

environment
cat "$OUT/env.txt"

# the datasets first, once (the parallel comparison runs would race to convert them)
step data 120 python3 -c "from dataset_converters.builtin import ensure_builtin as e
for name in ('ml-100k-msr', 'amazon-art-office'): print(name, 'converted' if e(name, '$ROOT/dataset') else 'present')"
# three lanes at once (the GPU is far from full with any one of them): the CTR knowledge path, the alignment,
# the TSLRec comparison
lane_ctr() {
  step knowledge 120 llm4msr-knowledge --dataset=ml-100k-msr --data_path="$ROOT/dataset/" --device=cuda --report
  step train 120 run_recbole --model=MMoE_LLM4MSR --dataset=ml-100k-msr --data_path="$ROOT/dataset/" --epochs=2 \
    --llm_device=cuda --show_progress=False
}
lane_align() {
  step align 240 llm4msr-align --dataset=amazon-art-office --data_path="$ROOT/dataset/" --device=cuda \
    --out="$RECBOLE_LLM4MSR_CACHE/aligned/amazon-art-office-2000" --max_samples=2000 --eval_users=200
}
C=$OUT/compare; mkdir -p "$C"
label_run() {  # label_run LABEL FOLDER [sft|raw]: one comparison folder per label, started once that store exists
  local limit
  if [ -n "${3:-}" ]; then  # wait for the store another process builds: sft (TSLRec) or raw (no SFT)
    until ls "$RECBOLE_LLM4MSR_CACHE"/tslrec/amazon-art-office/SASRec-*-"$3"-*/tslrec.json >/dev/null 2>&1; do
      [ "$(left)" -le 60 ] && return; sleep 5; done
  fi
  limit=$(( $(left) - 35 )); [ "$limit" -le 10 ] && return
  MODELS=$1 OUT_DIR=$C/$2 LLM4MSR_BIN=$BIN OMP_NUM_THREADS=2 LR_GRID=$LR_GRID timeout "$limit" \
    bash "$ROOT/benchmarks/compare_tslrec.sh" --set tslrec_extract_batch_size=256 > "$C/$2.log" 2>&1
}
lane_tslrec() {
  local t; t=$(date +%s)
  label_run SASRec sasrec & label_run GRU4Rec gru4rec & label_run SASRec_TSLRec sasrec-tslrec &
  label_run "SASRec_TSLRec[tslrec_sft=False]" sasrec-raw &
  label_run "SASRec_TSLRec[shuffle]" sasrec-shuffle sft & label_run GRU4Rec_TSLRec gru4rec-tslrec sft &
  label_run "GRU4Rec_TSLRec[shuffle]" gru4rec-shuffle sft & label_run "GRU4Rec_TSLRec[tslrec_sft=False]" gru4rec-raw raw &
  wait
  printf 'tslrec\t-\t%s\n' "$(( $(date +%s) - t ))" >> "$OUT/steps.tsv"
}
# the learning-rate grid of the comparison: one rate (RecBole's SASRec default) unless LR_GRID says otherwise,
# so that a short GPU lease sees every label's seeds
LR_GRID=${LR_GRID:-0.001}
lane_ctr & lane_align & lane_tslrec &
wait
folders=$(ls "$C"/*/runs.csv 2>/dev/null | grep -v /merged/ | xargs -r -n1 dirname | paste -sd, -)
[ -n "$folders" ] && OUT_DIR=$C/merged LLM4MSR_BIN=$BIN LR_GRID=$LR_GRID bash "$ROOT/benchmarks/compare_tslrec.sh" \
  --set tslrec_extract_batch_size=256 --merge="$folders" > "$C/merged.log" 2>&1
tail -n 30 "$C/merged.log"
cat "$OUT/steps.tsv"
