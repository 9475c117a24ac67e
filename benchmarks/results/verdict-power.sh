#!/bin/bash
# regenerates benchmarks/results/verdict-power.{csv,md} (session 30): the seeds issue 15's verdict would need, from the
# 8-seed spreads of the default knowledge, the positive control (the no-LLM profile as knowledge) and the bag of LLM
# categories against plain and their shuffled controls; run from the repository root (the stores as in the folders'
# command.sh / cross.sh)
set -e
C=${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge
PROFILE="train_batch_size=8192;knowledge_store=$C/amazon-art-office/no-LLM-profile-svd384-profile-26360ab2e4fa06f2;knowledge_norm=none"
CLUSTERS="train_batch_size=8192;knowledge_store=$C/amazon-art-office/all-MiniLM-L6-v2-kmeans1024-svd384-clusters-a1289cf2c96d663d;knowledge_norm=none"
.venv/bin/python benchmarks/verdict_power.py --dataset=amazon-art-office --epochs=4 --seeds=8 --tests=54 --passing=8 --at=3 \
  --entry "SharedBottom=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|SharedBottom|train_batch_size=8192" \
  --entry "SharedBottom MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|SharedBottom_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "SharedBottom MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|SharedBottom_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "SharedBottom profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|SharedBottom_LLM4MSR|$PROFILE" \
  --entry "SharedBottom profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|SharedBottom_LLM4MSR[shuffle]|$PROFILE" \
  --entry "SharedBottom LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|SharedBottom_LLM4MSR|$CLUSTERS" \
  --pair "SharedBottom MiniLM whitened,SharedBottom" --pair "SharedBottom MiniLM whitened,SharedBottom MiniLM whitened shuffled" \
  --pair "SharedBottom profile,SharedBottom" --pair "SharedBottom profile,SharedBottom profile shuffled" --pair "SharedBottom LLM categories,SharedBottom" \
  --entry "MMoE=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|MMoE|train_batch_size=8192" \
  --entry "MMoE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|MMoE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "MMoE MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|MMoE_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "MMoE profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|MMoE_LLM4MSR|$PROFILE" \
  --entry "MMoE profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|MMoE_LLM4MSR[shuffle]|$PROFILE" \
  --entry "MMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|MMoE_LLM4MSR|$CLUSTERS" \
  --pair "MMoE MiniLM whitened,MMoE" --pair "MMoE MiniLM whitened,MMoE MiniLM whitened shuffled" \
  --pair "MMoE profile,MMoE" --pair "MMoE profile,MMoE profile shuffled" --pair "MMoE LLM categories,MMoE" \
  --entry "OMoE=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|OMoE|train_batch_size=8192" \
  --entry "OMoE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|OMoE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "OMoE MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|OMoE_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "OMoE profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|OMoE_LLM4MSR|$PROFILE" \
  --entry "OMoE profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|OMoE_LLM4MSR[shuffle]|$PROFILE" \
  --entry "OMoE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|OMoE_LLM4MSR|$CLUSTERS" \
  --pair "OMoE MiniLM whitened,OMoE" --pair "OMoE MiniLM whitened,OMoE MiniLM whitened shuffled" \
  --pair "OMoE profile,OMoE" --pair "OMoE profile,OMoE profile shuffled" --pair "OMoE LLM categories,OMoE" \
  --entry "PLE=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|PLE|train_batch_size=8192" \
  --entry "PLE MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|PLE_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "PLE MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|PLE_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "PLE profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|PLE_LLM4MSR|$PROFILE" \
  --entry "PLE profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|PLE_LLM4MSR[shuffle]|$PROFILE" \
  --entry "PLE LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|PLE_LLM4MSR|$CLUSTERS" \
  --pair "PLE MiniLM whitened,PLE" --pair "PLE MiniLM whitened,PLE MiniLM whitened shuffled" \
  --pair "PLE profile,PLE" --pair "PLE profile,PLE profile shuffled" --pair "PLE LLM categories,PLE" \
  --entry "STAR=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|STAR|train_batch_size=8192" \
  --entry "STAR MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|STAR_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "STAR MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|STAR_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "STAR profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|STAR_LLM4MSR|$PROFILE" \
  --entry "STAR profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|STAR_LLM4MSR[shuffle]|$PROFILE" \
  --entry "STAR LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|STAR_LLM4MSR|$CLUSTERS" \
  --pair "STAR MiniLM whitened,STAR" --pair "STAR MiniLM whitened,STAR MiniLM whitened shuffled" \
  --pair "STAR profile,STAR" --pair "STAR profile,STAR profile shuffled" --pair "STAR LLM categories,STAR" \
  --entry "AITM=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|AITM|train_batch_size=8192" \
  --entry "AITM MiniLM whitened=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|AITM_LLM4MSR[knowledge_norm=whiten]|train_batch_size=8192" \
  --entry "AITM MiniLM whitened shuffled=benchmarks/results/compare-amazon-art-office-whiten-8seeds-all|0.01|AITM_LLM4MSR[knowledge_norm=whiten;shuffle]|train_batch_size=8192" \
  --entry "AITM profile=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|AITM_LLM4MSR|$PROFILE" \
  --entry "AITM profile shuffled=benchmarks/results/compare-amazon-art-office-profile-8seeds|0.01|AITM_LLM4MSR[shuffle]|$PROFILE" \
  --entry "AITM LLM categories=benchmarks/results/compare-amazon-art-office-clusters-8seeds|0.01|AITM_LLM4MSR|$CLUSTERS" \
  --pair "AITM MiniLM whitened,AITM" --pair "AITM MiniLM whitened,AITM MiniLM whitened shuffled" \
  --pair "AITM profile,AITM" --pair "AITM profile,AITM profile shuffled" --pair "AITM LLM categories,AITM" \
  --out benchmarks/results/verdict-power.csv
.venv/bin/python benchmarks/verdict_power.py --dataset=ml-100k-msr --epochs=30 --seeds=8 --tests=72 --passing=8 --at=3 \
  --entry "SharedBottom=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom" \
  --entry "SharedBottom MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR|knowledge_norm=none" \
  --entry "SharedBottom MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|SharedBottom_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "SharedBottom MiniLM,SharedBottom" --pair "SharedBottom MiniLM,SharedBottom MiniLM shuffled" \
  --entry "MMoE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE" \
  --entry "MMoE MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR|knowledge_norm=none" \
  --entry "MMoE MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|MMoE_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "MMoE MiniLM,MMoE" --pair "MMoE MiniLM,MMoE MiniLM shuffled" \
  --entry "OMoE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE" \
  --entry "OMoE MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR|knowledge_norm=none" \
  --entry "OMoE MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|OMoE_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "OMoE MiniLM,OMoE" --pair "OMoE MiniLM,OMoE MiniLM shuffled" \
  --entry "PLE=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE" \
  --entry "PLE MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE_LLM4MSR|knowledge_norm=none" \
  --entry "PLE MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|PLE_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "PLE MiniLM,PLE" --pair "PLE MiniLM,PLE MiniLM shuffled" \
  --entry "STAR=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR" \
  --entry "STAR MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR_LLM4MSR|knowledge_norm=none" \
  --entry "STAR MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|STAR_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "STAR MiniLM,STAR" --pair "STAR MiniLM,STAR MiniLM shuffled" \
  --entry "AITM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM" \
  --entry "AITM MiniLM=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM_LLM4MSR|knowledge_norm=none" \
  --entry "AITM MiniLM shuffled=benchmarks/results/compare-ml-100k-msr-items-all-8seeds|0.001,0.003,0.01|AITM_LLM4MSR[shuffle]|knowledge_norm=none" \
  --pair "AITM MiniLM,AITM" --pair "AITM MiniLM,AITM MiniLM shuffled" \
  --out benchmarks/results/verdict-power.csv
