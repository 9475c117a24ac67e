#!/usr/bin/env bash
# LLM4MSR on amazon-art-office with its shuffled-knowledge control, MMoE and STAR (resumable: rerun the same command
# after a stop; finished runs are reused). The ml-1m-msr harness: one learning rate (0.01, given: no search), at
# most 4 epochs at a batch of 8,192, seeds 2020-2022.
# SmolLM2's user-prompt knowledge of all 9,577 users takes hours on 2 CPU cores and about 2.5 minutes on a GPU (its
# item-text knowledge, knowledge_user_vector: items, ~11 min on 2 AMX cores): give a finished store in KNOWLEDGE_STORE
# (e.g. one built by `llm4msr-knowledge --dataset=amazon-art-office --device=cuda`, or by benchmarks/gpu_amazon.sh);
# without it the first LLM4MSR run builds the default store.
# KNOWLEDGE_NORM (default none): the tables of sessions 1-27 ran with knowledge_norm: none, the default of their
# time, so that is what this harness passes to reproduce or extend them; KNOWLEDGE_NORM=auto gives the current default
# (whiten on this dataset). A label's own [knowledge_norm=...] wins over it.
# Environment: MODELS, OUT_DIR, KNOWLEDGE_STORE, KNOWLEDGE_NORM, LLM4MSR_BIN (folder of the console scripts, default
# .venv/bin); further llm4msr-compare flags pass through ("$@": --report_only, --merge=...).
cd "$(dirname "$0")/.."
STORE=()
[ -n "${KNOWLEDGE_STORE:-}" ] && STORE=(--set "knowledge_store=$KNOWLEDGE_STORE")
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ${LLM4MSR_BIN:-.venv/bin}/llm4msr-compare --dataset=amazon-art-office --seeds=3 \
  --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 --set "knowledge_norm=${KNOWLEDGE_NORM:-none}" \
  --data_path=dataset/ "${STORE[@]}" \
  --out=${OUT_DIR:-benchmarks/results/compare-amazon-art-office} \
  --models="${MODELS:-MMoE,MMoE_LLM4MSR,MMoE_LLM4MSR[shuffle],STAR,STAR_LLM4MSR,STAR_LLM4MSR[shuffle]}" "$@"
