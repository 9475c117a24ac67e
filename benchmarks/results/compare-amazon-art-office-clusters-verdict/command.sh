#!/bin/bash
# Session 29: the issue-15 verdict harness (3 seeds, plain / LLM4MSR / LLM4MSR[shuffle], BH over the table's tests) for
# the bag of LLM item categories as knowledge (benchmarks/cluster_knowledge.py --clusters 1024). Run from the
# repository root. The plain and LLM4MSR rows are those of compare-amazon-art-office-clusters-8seeds (seeds 2020-2022);
# the shuffled controls were run here (in three parts, merged).
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office/all-MiniLM-L6-v2-kmeans1024-svd384-clusters-a1289cf2c96d663d)
L=""; for b in SharedBottom MMoE OMoE PLE STAR AITM; do L="$L,$b,${b}_LLM4MSR,${b}_LLM4MSR[shuffle]"; done
ARGS=(--dataset=amazon-art-office --seeds=3 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 --set knowledge_norm=none
      --set knowledge_store=$S --data_path=dataset/ --out=benchmarks/results/compare-amazon-art-office-clusters-verdict)
.venv/bin/llm4msr-compare "${ARGS[@]}" --models="${L#,}" --merge=benchmarks/results/compare-amazon-art-office-clusters-8seeds
.venv/bin/llm4msr-compare "${ARGS[@]}" --models="${L#,}"
