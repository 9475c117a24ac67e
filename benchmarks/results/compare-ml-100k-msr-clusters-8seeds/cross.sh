#!/bin/bash
# regenerates benchmarks/results/compare-ml-100k-msr-clusters-8seeds/cross.md (session 30): LLM4MSR with the bag of LLM item categories (K = 64) against the plain backbone and the default knowledge (the mean of the same MiniLM item vectors, raw as auto chooses on ml-100k-msr), 8 seeds, each label at its own searched rate
# run from the repository root after benchmarks/cluster_knowledge.py --dataset ml-100k-msr --clusters 64 built the store
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr/all-MiniLM-L6-v2-kmeans64-svd384-clusters-3ab2a86050ff8d9f)
K="knowledge_store=$S;knowledge_norm=none"
exec .venv/bin/python benchmarks/cross_compare.py --dataset=ml-100k-msr --epochs=30 --seeds=8 \
  --entry "SharedBottom=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom" \
  --entry "SharedBottom MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|knowledge_norm=none" \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|$K" \
  --entry "MMoE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE" \
  --entry "MMoE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|knowledge_norm=none" \
  --entry "MMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|$K" \
  --entry "OMoE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE" \
  --entry "OMoE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|knowledge_norm=none" \
  --entry "OMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|$K" \
  --entry "PLE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE" \
  --entry "PLE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|knowledge_norm=none" \
  --entry "PLE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|$K" \
  --entry "STAR=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR" \
  --entry "STAR MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|knowledge_norm=none" \
  --entry "STAR LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|$K" \
  --entry "AITM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM" \
  --entry "AITM MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|knowledge_norm=none" \
  --entry "AITM LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|$K" \
  --pair "SharedBottom LLM categories,SharedBottom" \
  --pair "SharedBottom LLM categories,SharedBottom MiniLM mean" \
  --pair "MMoE LLM categories,MMoE" \
  --pair "MMoE LLM categories,MMoE MiniLM mean" \
  --pair "OMoE LLM categories,OMoE" \
  --pair "OMoE LLM categories,OMoE MiniLM mean" \
  --pair "PLE LLM categories,PLE" \
  --pair "PLE LLM categories,PLE MiniLM mean" \
  --pair "STAR LLM categories,STAR" \
  --pair "STAR LLM categories,STAR MiniLM mean" \
  --pair "AITM LLM categories,AITM" \
  --pair "AITM LLM categories,AITM MiniLM mean" \
  --out benchmarks/results/compare-ml-100k-msr-clusters-8seeds/cross.md
