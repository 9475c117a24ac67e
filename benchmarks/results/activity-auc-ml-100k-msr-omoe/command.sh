#!/bin/bash
# regenerates this folder (session 31): OMoE, OMoE_LLM4MSR and its shuffled control at the rates the 8-seed harness
# chose (compare-ml-100k-msr-items-all-8seeds/), seeds 2020-2027, test AUC by user activity; run from the repo root;
# one thread per run, as the harness runs were made
OMP_NUM_THREADS=1 .venv/bin/python benchmarks/activity_auc.py --dataset ml-100k-msr --seeds 2020,2021,2022,2023,2024,2025,2026,2027 \
  --epochs 30 --entry "OMoE|0.01" --entry "OMoE_LLM4MSR|0.003" --entry "OMoE_LLM4MSR[shuffle]|0.01" \
  --set knowledge_norm=none --out benchmarks/results/activity-auc-ml-100k-msr-omoe
