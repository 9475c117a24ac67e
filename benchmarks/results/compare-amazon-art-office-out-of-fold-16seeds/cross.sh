#!/bin/bash
# regenerates cross.md of this folder (session 33): AITM_LLM4MSR and STAR_LLM4MSR on amazon-art-office over 16 seeds,
# trained the paper's way (in-sample), out-of-fold (K = 20: no training row reads a vector made from its own label)
# and shifted (the next fold's vector: as many items left out, the row's own item kept), with the shuffled controls;
# paired by seed, BH over every test of the table. Out-of-fold against shifted is the leak test: the two differ only
# in whether the row's own item is in the vector it trains on. Run from the repository root after command.sh.
F=benchmarks/results/compare-amazon-art-office-out-of-fold-16seeds
E="train_batch_size=8192"
ARGS=()
for b in AITM STAR; do
  ARGS+=(--entry "$b plain=$F|0.01|$b|$E"
         --entry "$b in-sample=$F|0.01|${b}_LLM4MSR[knowledge_norm=whiten]|$E"
         --entry "$b in-sample shuffled=$F|0.01|${b}_LLM4MSR[knowledge_norm=whiten;shuffle]|$E"
         --entry "$b out-of-fold K20=$F|0.01|${b}_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20]|$E"
         --entry "$b out-of-fold K20 shuffled=$F|0.01|${b}_LLM4MSR[knowledge_norm=whiten;shuffle;knowledge_out_of_fold=20]|$E"
         --entry "$b shifted K20=$F|0.01|${b}_LLM4MSR[knowledge_norm=whiten;knowledge_out_of_fold=20;knowledge_out_of_fold_mode=shifted]|$E"
         --pair "$b in-sample,$b in-sample shuffled" --pair "$b in-sample,$b plain"
         --pair "$b out-of-fold K20,$b in-sample" --pair "$b shifted K20,$b in-sample"
         --pair "$b out-of-fold K20,$b shifted K20"
         --pair "$b out-of-fold K20,$b out-of-fold K20 shuffled" --pair "$b out-of-fold K20,$b plain"
         --pair "$b shifted K20,$b in-sample shuffled")
done
exec .venv/bin/python benchmarks/cross_compare.py --dataset=amazon-art-office --epochs=4 --seeds=16 \
  --data_path=dataset/ "${ARGS[@]}" --out $F/cross.md
