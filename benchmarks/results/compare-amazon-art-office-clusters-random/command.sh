#!/bin/bash
# Session 29: the control of the LLM-category knowledge: the same bag over random categories of the same sizes
# (python benchmarks/cluster_knowledge.py --dataset amazon-art-office --clusters 1024 --random; probe 0.6901 raw,
# the sparse bag 0.6905, against the LLM categories' 0.7001 / 0.7021), 6 backbones x 3 seeds (2020-2022); run from the
# repository root. Made in two halves (compare_amazon.sh, MODELS= three backbones each, KNOWLEDGE_NORM=none) and
# merged with the plain rows of compare-amazon-art-office-whiten-8seeds-all; cross table:
# compare-amazon-art-office-clusters-8seeds/cross-control.sh.
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office/all-MiniLM-L6-v2-random1024-svd384-clusters-f680016efe1ac619)
L=""; for b in SharedBottom MMoE OMoE PLE STAR AITM; do L="$L,$b,${b}_LLM4MSR"; done
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=3 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-clusters-random --models="${L#,}" \
  --merge=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=3 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-clusters-random --models="${L#,}"
