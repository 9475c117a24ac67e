#!/bin/bash
# regenerates cross.md of this folder (session 32; PLE and OMoE added in session 33, MMoE in session 34): STAR_LLM4MSR (and SharedBottom_LLM4MSR, AITM_LLM4MSR, PLE_LLM4MSR, OMoE_LLM4MSR and MMoE_LLM4MSR, K = 20) trained with out-of-fold knowledge against the same
# model trained the paper's way (the 8-seed verdict folder, whitened default knowledge), plain STAR and the shuffled
# controls and the shifted control (as few items per training vector, the row's own item kept), paired by seed; run from the repository root after command.sh
H=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all
D=benchmarks/results/compare-amazon-art-office-out-of-fold-8seeds
K20=()  # SharedBottom, AITM, PLE, OMoE, MMoE: in-sample and out-of-fold K = 20, each with its shuffled control
for b in SharedBottom AITM PLE OMoE MMoE; do
  K20+=(--entry "$b plain=$H|0.01|$b|train_batch_size=8192"
        --entry "$b in-sample=$H|0.01|${b}_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192"
        --entry "$b in-sample shuffled=$H|0.01|${b}_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192"
        --entry "$b out-of-fold K20=$D|0.01|${b}_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20]|train_batch_size=8192"
        --entry "$b out-of-fold K20 shuffled=$D|0.01|${b}_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20]|train_batch_size=8192"
        --pair "$b in-sample,$b in-sample shuffled" --pair "$b out-of-fold K20,$b in-sample"
        --pair "$b out-of-fold K20,$b out-of-fold K20 shuffled" --pair "$b out-of-fold K20,$b plain")
done
exec .venv/bin/python benchmarks/cross_compare.py --dataset=amazon-art-office --epochs=4 --seeds=8 --data_path=dataset/ \
  --entry "STAR plain=$H|0.01|STAR|train_batch_size=8192" \
  --entry "STAR in-sample=$H|0.01|STAR_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "STAR in-sample shuffled=$H|0.01|STAR_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "STAR out-of-fold=$D|0.01|STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=5]|train_batch_size=8192" \
  --entry "STAR out-of-fold shuffled=$D|0.01|STAR_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=5]|train_batch_size=8192" \
  --entry "STAR out-of-fold K20=$D|0.01|STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20]|train_batch_size=8192" \
  --entry "STAR out-of-fold K20 shuffled=$D|0.01|STAR_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20]|train_batch_size=8192" \
  --pair "STAR out-of-fold,STAR in-sample" --pair "STAR out-of-fold,STAR out-of-fold shuffled" \
  --pair "STAR out-of-fold,STAR plain" --pair "STAR out-of-fold shuffled,STAR in-sample shuffled" \
  --pair "STAR in-sample,STAR in-sample shuffled" \
  --pair "STAR out-of-fold K20,STAR in-sample" --pair "STAR out-of-fold K20,STAR out-of-fold K20 shuffled" \
  --pair "STAR out-of-fold K20,STAR out-of-fold" \
  "${K20[@]}" \
  --entry "STAR shifted K20=$D|0.01|STAR_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted]|train_batch_size=8192" \
  --entry "AITM shifted K20=$D|0.01|AITM_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted]|train_batch_size=8192" \
  --pair "STAR shifted K20,STAR in-sample" --pair "STAR out-of-fold K20,STAR shifted K20" \
  --pair "AITM shifted K20,AITM in-sample" --pair "AITM out-of-fold K20,AITM shifted K20" \
  --out $D/cross.md
