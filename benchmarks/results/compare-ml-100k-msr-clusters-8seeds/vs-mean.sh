#!/bin/bash
# regenerates benchmarks/results/compare-ml-100k-msr-clusters-8seeds/vs-mean.{csv,md}, vs-mean-pooled.csv (session 30): the bag of LLM categories (K = 64) against the
# default knowledge (the raw mean of the same MiniLM item vectors), 8 seeds, per backbone and pooled over the six
# (benchmarks/verdict_power.py; the per-backbone tests are in cross.md); run from the repository root
set -e
LLM="knowledge_store=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr/all-MiniLM-L6-v2-kmeans64-svd384-clusters-3ab2a86050ff8d9f;knowledge_norm=none"
exec .venv/bin/python benchmarks/verdict_power.py --dataset=ml-100k-msr --epochs=30 --seeds=8 --tests=12 --passing=4 --at=3 \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|$LLM" --entry "SharedBottom MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|knowledge_norm=none" \
  --pair "SharedBottom LLM categories,SharedBottom MiniLM mean" \
  --entry "MMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|$LLM" --entry "MMoE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|knowledge_norm=none" \
  --pair "MMoE LLM categories,MMoE MiniLM mean" \
  --entry "OMoE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|$LLM" --entry "OMoE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|knowledge_norm=none" \
  --pair "OMoE LLM categories,OMoE MiniLM mean" \
  --entry "PLE LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|$LLM" --entry "PLE MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|knowledge_norm=none" \
  --pair "PLE LLM categories,PLE MiniLM mean" \
  --entry "STAR LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|$LLM" --entry "STAR MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|knowledge_norm=none" \
  --pair "STAR LLM categories,STAR MiniLM mean" \
  --entry "AITM LLM categories=benchmarks/results/compare-ml-100k-msr-clusters-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|$LLM" --entry "AITM MiniLM mean=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|knowledge_norm=none" \
  --pair "AITM LLM categories,AITM MiniLM mean" \
  --out benchmarks/results/compare-ml-100k-msr-clusters-8seeds/vs-mean.csv
