#!/bin/bash
# Session 32: out-of-fold knowledge on amazon-art-office (users with ~16 liked training items each, so a positive
# row's item is a larger share of its user's vector than on ml-100k-msr). STAR_LLM4MSR with the default MiniLM
# knowledge whitened (what knowledge_norm: auto chooses here) trained with knowledge_out_of_fold=5, and its shuffled
# control, the verdict's harness settings (4 epochs, batch 8192, rate 0.01 as the 8-seed folder chose), 8 seeds, one
# thread per run, the two labels in parallel. Run from the repository root. K = 5, then K = 20 (vectors of 95% of a
# user's items: does the gap to in-sample training come from the fold vectors' smaller share of items?).
# SharedBottom and AITM with K = 20 as well (BACKBONES=SharedBottom FOLDS=20, BACKBONES=AITM FOLDS=20); session 33:
# PLE and OMoE with K = 20 (BACKBONES="PLE OMoE" FOLDS=20), the two other backbones that lead their control in-sample;
# session 34: MMoE with K = 20 (BACKBONES=MMoE FOLDS=20), so that all six backbones have out-of-fold rows.
if [ -z "$SHIFTED" ]; then
for b in ${BACKBONES:-STAR}; do
for k in ${FOLDS:-5 20}; do
for label in "${b}_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=$k]" "${b}_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=$k]"; do
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 \
    --set train_batch_size=8192 --data_path=dataset/ \
    --out=benchmarks/results/compare-amazon-art-office-out-of-fold-8seeds --models="$label" &
done
wait
done
done
fi
# the shifted control (knowledge_out_of_fold_mode=shifted: the next fold's vector, the row's own item kept), K = 20,
# STAR and AITM in parallel (SHIFTED=1)
if [ -n "$SHIFTED" ]; then
  for b in STAR AITM; do
    OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 \
      --set train_batch_size=8192 --data_path=dataset/ --out=benchmarks/results/compare-amazon-art-office-out-of-fold-8seeds \
      --models="${b}_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted]" &
  done
  wait
fi
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --data_path=dataset/ --out=benchmarks/results/compare-amazon-art-office-out-of-fold-8seeds --report_only \
  --models="STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=5],STAR_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=5],STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],STAR_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20],SharedBottom_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],SharedBottom_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20],AITM_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],AITM_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20],STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted],AITM_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted],PLE_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],PLE_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20],OMoE_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],OMoE_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20],MMoE_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20],MMoE_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20]"
