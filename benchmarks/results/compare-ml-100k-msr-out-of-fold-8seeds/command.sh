#!/bin/bash
# Session 32: LLM4MSR trained with out-of-fold knowledge (knowledge_out_of_fold=5: a training row reads its user's
# vector rebuilt without its fold's liked items; evaluation reads the store's vector), the default MiniLM knowledge,
# and its shuffled control, at the rate the 8-seed harness chose for the default LLM4MSR (0.003; one rate, no search),
# 8 seeds, one thread per run, one process per backbone (STAR and SharedBottom in session 32; MMoE and OMoE in session
# 34: BACKBONES="MMoE OMoE"). Run from the repository root.
for b in ${BACKBONES:-STAR SharedBottom}; do
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.003 \
    --set knowledge_norm=none --data_path=dataset/ --out=benchmarks/results/compare-ml-100k-msr-out-of-fold-8seeds \
    --models="${b}_LLM4MSR[knowledge_out_of_fold=5],${b}_LLM4MSR[shuffle;knowledge_out_of_fold=5]" &
done
wait
L=""; for b in STAR SharedBottom MMoE OMoE; do L="$L,${b}_LLM4MSR[knowledge_out_of_fold=5],${b}_LLM4MSR[shuffle;knowledge_out_of_fold=5]"; done
.venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.003 --set knowledge_norm=none \
  --data_path=dataset/ --out=benchmarks/results/compare-ml-100k-msr-out-of-fold-8seeds --models="${L#,}" --report_only
