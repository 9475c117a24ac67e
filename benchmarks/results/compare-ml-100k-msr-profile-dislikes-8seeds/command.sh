#!/bin/bash
# Session 32: a positive control on ml-100k-msr. LLM4MSR with the no-LLM bag of the user's liked AND disliked item ids
# as its knowledge (python benchmarks/profile_knowledge.py --dataset ml-100k-msr --reference items+dislikes: TF-IDF,
# truncated SVD to 384, explained variance 0.753; validation neighbour probe 0.7198 dense / 0.7238 sparse against the
# default MiniLM knowledge's 0.6911), and its shuffled control, at the rate the harness chose for the default LLM4MSR
# on these backbones (0.003; one rate, no search), 8 seeds, one thread per run. Run from the repository root.
# (STAR and SharedBottom first; OMoE and MMoE added the same session with BACKBONES=OMoE, BACKBONES=MMoE.)
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr/no-LLM-profile-items-dislikes-svd384-profile-10b7774ce5c30e82)
for b in ${BACKBONES:-STAR SharedBottom OMoE MMoE}; do
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.003 \
    --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
    --out=benchmarks/results/compare-ml-100k-msr-profile-dislikes-8seeds --models="${b}_LLM4MSR,${b}_LLM4MSR[shuffle]"
done
# one table of every backbone's labels (each loop above rewrites it with its own two)
L=""; for b in STAR SharedBottom OMoE MMoE; do L="$L,${b}_LLM4MSR,${b}_LLM4MSR[shuffle]"; done
.venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.003 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ \
  --out=benchmarks/results/compare-ml-100k-msr-profile-dislikes-8seeds --models="${L#,}" --report_only
