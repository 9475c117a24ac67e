#!/usr/bin/env bash
# The ml-100k-msr comparison of the README (resumable: rerun the same command after a stop; finished runs are reused).
# One thread per run (the session that ran it kept the other core for development). Further llm4msr-compare flags
# pass through ("$@": --report_only, --merge=...). The SmolLM2 knowledge of these runs is named (llm=smollm2,
# knowledge_user_vector=prompt: the paper's recipe, the default until session 7), and so is
# knowledge_norm=none (the default until session 28; the current default, auto, chooses on the validation probe).
cd "$(dirname "$0")/.."
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} .venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=3 --epochs=30 --set llm=smollm2 --set knowledge_user_vector=prompt --set knowledge_norm=none \
  --data_path=dataset/ --out=benchmarks/results/compare-ml-100k-msr \
  --models="DeepFM,WideDeep,DCN,MMoE,MMoE_LLM4MSR,MMoE_LLM4MSR[shuffle],MMoE_DN,MMoE_EP,STAR,STAR_LLM4MSR,STAR_LLM4MSR[shuffle],STAR_DN,STAR_EP,PLE,PLE_LLM4MSR,PLE_LLM4MSR[shuffle],PLE_DN,PLE_EP,SharedBottom,SharedBottom_LLM4MSR,SharedBottom_LLM4MSR[shuffle],SharedBottom_DN,SharedBottom_EP,OMoE,OMoE_LLM4MSR,OMoE_LLM4MSR[shuffle],OMoE_DN,OMoE_EP,AITM,AITM_LLM4MSR,AITM_LLM4MSR[shuffle],AITM_DN,AITM_EP" "$@"
