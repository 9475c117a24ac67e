#!/bin/bash
# regenerates benchmarks/results/compare-amazon-art-office-clusters-8seeds/vs-mean.{csv,md}, vs-mean-pooled.csv (session 30): the bag of LLM categories against the default
# knowledge (the whitened mean of the same MiniLM item vectors), 8 seeds, per backbone and pooled over the six
# (benchmarks/verdict_power.py; the per-backbone tests are in cross.md); run from the repository root
set -e
LLM="train_batch_size=8192;knowledge_store=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office/all-MiniLM-L6-v2-kmeans1024-svd384-clusters-a1289cf2c96d663d;knowledge_norm=none"
exec .venv/bin/python benchmarks/verdict_power.py --dataset=amazon-art-office --epochs=4 --seeds=8 --tests=12 --passing=4 --at=3 \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|SharedBottom_LLM4MSR|$LLM" --entry "SharedBottom MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|SharedBottom_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "SharedBottom LLM categories,SharedBottom MiniLM whitened" \
  --entry "MMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|MMoE_LLM4MSR|$LLM" --entry "MMoE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|MMoE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "MMoE LLM categories,MMoE MiniLM whitened" \
  --entry "OMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|OMoE_LLM4MSR|$LLM" --entry "OMoE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|OMoE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "OMoE LLM categories,OMoE MiniLM whitened" \
  --entry "PLE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|PLE_LLM4MSR|$LLM" --entry "PLE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|PLE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "PLE LLM categories,PLE MiniLM whitened" \
  --entry "STAR LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|STAR_LLM4MSR|$LLM" --entry "STAR MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|STAR_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "STAR LLM categories,STAR MiniLM whitened" \
  --entry "AITM LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|AITM_LLM4MSR|$LLM" --entry "AITM MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|AITM_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --pair "AITM LLM categories,AITM MiniLM whitened" \
  --out benchmarks/results/compare-amazon-art-office-clusters-8seeds/vs-mean.csv
