#!/bin/bash
# Session 29: LLM4MSR with the bag of item ids and the words of their categories as its knowledge, amazon-art-office, 8 seeds.
# Run from the repository root. The store: python benchmarks/profile_knowledge.py --dataset amazon-art-office --reference items+categories
# (TF-IDF of the user's training positives as item ids + category words, truncated SVD to 384; explained variance 0.428; probe 0.6995
# raw, the sparse bag 0.7007). The runs were made in two halves (compare_amazon.sh, MODELS= three backbones each,
# KNOWLEDGE_NORM=none) and merged here with the plain rows of compare-amazon-art-office-whiten-8seeds-all.
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office/no-LLM-profile-items-categories-svd384-profile-9f739e6bc25e1e95)
L=""; for b in SharedBottom MMoE OMoE PLE STAR AITM; do L="$L,$b,${b}_LLM4MSR"; done
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-profile-categories-8seeds --models="${L#,}" \
  --merge=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-profile-categories-8seeds --models="${L#,}"
