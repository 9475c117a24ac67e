#!/bin/bash
# regenerates benchmarks/results/compare-ml-100k-msr-clusters-8seeds/vs-random.{csv,md}, vs-random-pooled.csv (session 30): the bag of LLM categories (K = 64) against the
# same bag over random categories of the same sizes (runs in random/, seeds 2020-2022, each at the rate the LLM
# categories' model chose), per backbone and pooled over the six (benchmarks/verdict_power.py); run from the
# repository root after cluster_knowledge.py --dataset ml-100k-msr --clusters 64 [--random] built the stores
set -e
C=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr
LLM="knowledge_store=$C/all-MiniLM-L6-v2-kmeans64-svd384-clusters-3ab2a86050ff8d9f;knowledge_norm=none"
RND="knowledge_store=$C/all-MiniLM-L6-v2-random64-svd384-clusters-436841eff6f0ba18;knowledge_norm=none"
exec .venv/bin/python benchmarks/verdict_power.py --dataset=ml-100k-msr --epochs=30 --seeds=3 --tests=6 --passing=4 --at=3 \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|$LLM" --entry "SharedBottom random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.01|SharedBottom_LLM4MSR|$RND" \
  --pair "SharedBottom LLM categories,SharedBottom random categories" \
  --entry "MMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|$LLM" --entry "MMoE random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.01|MMoE_LLM4MSR|$RND" \
  --pair "MMoE LLM categories,MMoE random categories" \
  --entry "OMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|$LLM" --entry "OMoE random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.003|OMoE_LLM4MSR|$RND" \
  --pair "OMoE LLM categories,OMoE random categories" \
  --entry "PLE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|$LLM" --entry "PLE random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.01|PLE_LLM4MSR|$RND" \
  --pair "PLE LLM categories,PLE random categories" \
  --entry "STAR LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|$LLM" --entry "STAR random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.003|STAR_LLM4MSR|$RND" \
  --pair "STAR LLM categories,STAR random categories" \
  --entry "AITM LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|$LLM" --entry "AITM random categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds/random|0.003|AITM_LLM4MSR|$RND" \
  --pair "AITM LLM categories,AITM random categories" \
  --out benchmarks/results/compare-ml-100k-msr-clusters-8seeds/vs-random.csv
