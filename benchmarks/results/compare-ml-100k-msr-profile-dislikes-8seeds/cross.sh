#!/bin/bash
# regenerates cross.md of this folder (session 32): LLM4MSR with the bag of liked and disliked ids as its knowledge
# against the plain backbone and the default LLM4MSR (MiniLM knowledge) of the 8-seed harness folder, each at the rate
# its own folder chose, paired by seed; run from the repository root after command.sh
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr/no-LLM-profile-items-dislikes-svd384-profile-10b7774ce5c30e82)
H=benchmarks/results/compare-ml-100k-msr-items-all-8seeds
D=benchmarks/results/compare-ml-100k-msr-profile-dislikes-8seeds
args=()
for b in STAR SharedBottom OMoE MMoE; do
  args+=(--entry "$b plain=$H|0.001,0.003,0.01|$b|knowledge_norm=none"
         --entry "$b MiniLM=$H|0.001,0.003,0.01|${b}_LLM4MSR|knowledge_norm=none"
         --entry "$b MiniLM shuffled=$H|0.001,0.003,0.01|${b}_LLM4MSR[shuffle]|knowledge_norm=none"
         --entry "$b dislikes=$D|0.003|${b}_LLM4MSR|knowledge_norm=none;knowledge_store=$S"
         --entry "$b dislikes shuffled=$D|0.003|${b}_LLM4MSR[shuffle]|knowledge_norm=none;knowledge_store=$S"
         --pair "$b dislikes,$b plain" --pair "$b dislikes,$b dislikes shuffled" --pair "$b dislikes,$b MiniLM"
         --pair "$b dislikes shuffled,$b MiniLM shuffled")
done
exec .venv/bin/python benchmarks/cross_compare.py --dataset=ml-100k-msr --epochs=30 --seeds=8 --data_path=dataset/ "${args[@]}" \
  --out $D/cross.md
