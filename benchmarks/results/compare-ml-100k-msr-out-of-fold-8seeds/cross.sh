#!/bin/bash
# regenerates cross.md of this folder (session 32; MMoE and OMoE added in session 34): LLM4MSR trained with out-of-fold knowledge against the same model
# trained the paper's way (every row reads its user's vector, built from all the user's liked training items: the
# 8-seed harness folder), the plain backbone and the shuffled controls, each at the rate its own folder chose, paired
# by seed; run from the repository root after command.sh
H=benchmarks/results/compare-ml-100k-msr-items-all-8seeds
D=benchmarks/results/compare-ml-100k-msr-out-of-fold-8seeds
args=()
for b in STAR SharedBottom MMoE OMoE; do
  args+=(--entry "$b plain=$H|0.001,0.003,0.01|$b|knowledge_norm=none"
         --entry "$b in-sample=$H|0.001,0.003,0.01|${b}_LLM4MSR|knowledge_norm=none"
         --entry "$b in-sample shuffled=$H|0.001,0.003,0.01|${b}_LLM4MSR[shuffle]|knowledge_norm=none"
         --entry "$b out-of-fold=$D|0.003|${b}_LLM4MSR[knowledge_out_of_fold=5]|knowledge_norm=none"
         --entry "$b out-of-fold shuffled=$D|0.003|${b}_LLM4MSR[shuffle;knowledge_out_of_fold=5]|knowledge_norm=none"
         --pair "$b out-of-fold,$b in-sample" --pair "$b out-of-fold,$b out-of-fold shuffled"
         --pair "$b out-of-fold,$b plain" --pair "$b out-of-fold shuffled,$b in-sample shuffled")
done
exec .venv/bin/python benchmarks/cross_compare.py --dataset=ml-100k-msr --epochs=30 --seeds=8 --data_path=dataset/ "${args[@]}" \
  --out $D/cross.md
