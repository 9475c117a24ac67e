#!/bin/bash
# Session 33: does LLM4MSR's lead over its shuffled control on amazon-art-office need the training rows to read their
# own labels? Session 32 (8 seeds, compare-amazon-art-office-out-of-fold-8seeds) left it open: trained out-of-fold
# (K = 20) AITM's lead fell from +0.28% to +0.05% while the shifted control (as many items left out, the row's own
# item kept) kept the in-sample AUC; STAR's out-of-fold and shifted runs lost alike; no split significant. This runs
# 8 more seeds (2028-2035) of the six labels per backbone (plain, in-sample, its shuffled control, out-of-fold K = 20,
# its shuffled control, shifted K = 20), the verdict's harness settings (4 epochs, batch 8192, rate 0.01 as the 8-seed
# folder chose), one thread per run, two labels in parallel; then merges the first 8 seeds from the two session-32
# folders and reports over 16. BACKBONES="AITM STAR" by default (AITM ran first). Run from the repository root.
F=benchmarks/results/compare-amazon-art-office-out-of-fold-16seeds
H=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all
D=benchmarks/results/compare-amazon-art-office-out-of-fold-8seeds
labels() {
  echo "$1" "$1_LLM4MSR[knowledge_norm=whiten]" "$1_LLM4MSR[knowledge_norm=whiten;shuffle]" \
    "$1_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20]" \
    "$1_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20]" \
    "$1_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted]"
}
run() {
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=amazon-art-office --first_seed=2028 --seeds=8 --epochs=4 \
    --lr_grid=0.01 --set train_batch_size=8192 --data_path=dataset/ --out=$F --models="$1"
}
ALL=()
for b in ${BACKBONES:-AITM STAR}; do
  read -r -a L <<< "$(labels "$b")"
  ALL+=("${L[@]}")
  if [ -z "$REPORT_ONLY" ]; then
    for i in 0 2 4; do
      run "${L[$i]}" & run "${L[$((i + 1))]}" & wait
    done
  fi
done
.venv/bin/llm4msr-compare --dataset=amazon-art-office --first_seed=2020 --seeds=16 --epochs=4 --lr_grid=0.01 \
  --set train_batch_size=8192 --data_path=dataset/ --out=$F --merge=$H,$D --models="$(IFS=,; echo "${ALL[*]}")"
