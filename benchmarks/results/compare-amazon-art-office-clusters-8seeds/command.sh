#!/bin/bash
# Session 29: LLM4MSR with the bag of LLM item categories as knowledge (python benchmarks/cluster_knowledge.py --dataset
# amazon-art-office --clusters 1024: MiniLM item vectors of the default store, k-means into 1,024 categories, a user the
# TF-IDF bag of their liked items categories, SVD to 384; probe 0.7001 raw, the sparse bag 0.7021), 6 backbones x 8
# seeds; made in two halves and merged with the plain rows of compare-amazon-art-office-whiten-8seeds-all. Cross tables:
# cross.sh (8 seeds), cross-control.sh (against random categories, 3 seeds).
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office/all-MiniLM-L6-v2-kmeans1024-svd384-clusters-a1289cf2c96d663d)
L=""; for b in SharedBottom MMoE OMoE PLE STAR AITM; do L="$L,$b,${b}_LLM4MSR"; done
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-clusters-8seeds --models="${L#,}" \
  --merge=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all
.venv/bin/llm4msr-compare --dataset=amazon-art-office --seeds=8 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-amazon-art-office-clusters-8seeds --models="${L#,}"
