#!/bin/bash
# The issue-15 verdict table under the current default knowledge (session 28: knowledge_norm: auto, which picks whiten
# on amazon-art-office). Run from the repository root. The whitened LLM4MSR rows and their shuffled controls come from
# compare-amazon-art-office-whiten (labelled [knowledge_norm=whiten]; the default labels take them over as twins: the
# same config hash, no training), the plain / stock / MMoE and STAR DN / EP rows from that folder and
# compare-amazon-art-office-all; the DN / EP rows of SharedBottom, OMoE, PLE and AITM were run again here (those of
# compare-amazon-art-office-all named the SmolLM2 store, which is in their hash); they reproduce the earlier means.
set -e
B="SharedBottom MMoE OMoE PLE STAR AITM"; L="DeepFM,WideDeep,DCN"; H=""
for b in $B; do L="$L,$b,${b}_LLM4MSR,${b}_LLM4MSR[shuffle],${b}_DN,${b}_EP"
  H="$H,${b}_LLM4MSR[knowledge_norm=whiten],${b}_LLM4MSR[knowledge_norm=whiten;shuffle]"; done
OUT=benchmarks/results/compare-amazon-art-office-verdict-auto
ARGS=(--dataset=amazon-art-office --seeds=3 --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 --data_path=dataset/
      --out=$OUT)
.venv/bin/llm4msr-compare "${ARGS[@]}" --models="$L$H" \
  --merge=benchmarks/results/compare-amazon-art-office-whiten,benchmarks/results/compare-amazon-art-office-all
.venv/bin/llm4msr-compare "${ARGS[@]}" --models="$L$H"   # the twins, and the DN / EP runs missing from the merge
.venv/bin/llm4msr-compare "${ARGS[@]}" --models="$L" --report_only   # table.md, tests.csv, auc.png of the default labels
