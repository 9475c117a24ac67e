#!/bin/bash
# regenerates benchmarks/results/compare-amazon-art-office-clusters-8seeds/vs-random.{csv,md}, vs-random-pooled.csv (session 30): the bag
# of LLM categories against the same bag over random categories of the same sizes, seeds 2020-2022, per backbone (power)
# and pooled over the six backbones (benchmarks/verdict_power.py); run from the repository root
set -e
C=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/amazon-art-office
LLM="train_batch_size=8192;knowledge_store=$C/all-MiniLM-L6-v2-kmeans1024-svd384-clusters-a1289cf2c96d663d;knowledge_norm=none"
RND="train_batch_size=8192;knowledge_store=$C/all-MiniLM-L6-v2-random1024-svd384-clusters-f680016efe1ac619;knowledge_norm=none"
exec .venv/bin/python benchmarks/verdict_power.py --dataset=amazon-art-office --epochs=4 --seeds=3 --tests=6 --passing=4 --at=3 \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|SharedBottom_LLM4MSR|$LLM" --entry "SharedBottom random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|SharedBottom_LLM4MSR|$RND" \
  --pair "SharedBottom LLM categories,SharedBottom random categories" \
  --entry "MMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|MMoE_LLM4MSR|$LLM" --entry "MMoE random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|MMoE_LLM4MSR|$RND" \
  --pair "MMoE LLM categories,MMoE random categories" \
  --entry "OMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|OMoE_LLM4MSR|$LLM" --entry "OMoE random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|OMoE_LLM4MSR|$RND" \
  --pair "OMoE LLM categories,OMoE random categories" \
  --entry "PLE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|PLE_LLM4MSR|$LLM" --entry "PLE random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|PLE_LLM4MSR|$RND" \
  --pair "PLE LLM categories,PLE random categories" \
  --entry "STAR LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|STAR_LLM4MSR|$LLM" --entry "STAR random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|STAR_LLM4MSR|$RND" \
  --pair "STAR LLM categories,STAR random categories" \
  --entry "AITM LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|AITM_LLM4MSR|$LLM" --entry "AITM random categories=benchmarks/results/compare-amazon-art-office-clusters-random|0.01|AITM_LLM4MSR|$RND" \
  --pair "AITM LLM categories,AITM random categories" \
  --out benchmarks/results/compare-amazon-art-office-clusters-8seeds/vs-random.csv
