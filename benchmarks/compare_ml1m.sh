#!/usr/bin/env bash
# The ml-1m-msr comparison of the README with the fixed harness (resumable: rerun the same command after a stop;
# finished runs are reused). Cut to fit 2 CPU cores, as the earlier run was: one learning rate (0.01, chosen on
# seed 2019, never reported), at most 4 epochs at a batch of 8,192. The labels that answer "is it the knowledge?"
# come first (plain / LLM4MSR / its shuffle control), so a partial run still reads.
# knowledge_norm=none is named: the default when these ran (until session 28; the current default is auto).
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ${LLM4MSR_BIN:-.venv/bin}/llm4msr-compare --dataset=ml-1m-msr --seeds=3 \
  --epochs=4 --lr_grid=0.01 --set train_batch_size=8192 --set llm=smollm2 --set knowledge_user_vector=prompt --set knowledge_norm=none \
  --data_path=dataset/ \
  --out=${OUT_DIR:-benchmarks/results/compare-ml-1m-msr-fixed} \
  --models="${MODELS:-MMoE,MMoE_LLM4MSR,MMoE_LLM4MSR[shuffle],STAR,STAR_LLM4MSR,STAR_LLM4MSR[shuffle],MMoE_DN,MMoE_EP,STAR_DN,STAR_EP,DeepFM}" "$@"
