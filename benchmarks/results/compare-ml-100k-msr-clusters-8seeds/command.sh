#!/bin/bash
# Session 30: LLM4MSR with the bag of LLM item categories as knowledge on ml-100k-msr (python benchmarks/cluster_knowledge.py
# --dataset ml-100k-msr --clusters 64: MiniLM item vectors of the default store, k-means into 64 categories of ~22 movies,
# a user the TF-IDF bag of their liked items' categories, SVD to 384; K = 64 has the largest probe gap over random
# categories in cluster-knowledge-ml-100k-msr.md), 6 backbones x 8 seeds with the ml-100k-msr harness's lr search, in two
# halves (one thread each) merged with the plain and default rows of compare-ml-100k-msr-items-all-8seeds. The [shuffle]
# controls (3 seeds, each at the rate its unshuffled model chose): control/. Cross tables: cross.sh, cross-control.sh.
set -e
S=$(ls -d ${RECBOLE_LLM4MSR_CACHE:-$HOME/.cache/recbole_llm4msr}/knowledge/ml-100k-msr/all-MiniLM-L6-v2-kmeans64-svd384-clusters-3ab2a86050ff8d9f)
R=benchmarks/results/compare-ml-100k-msr-clusters-8seeds
half() {
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.001,0.003,0.01 \
    --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ --out=$1 --models="$2"
}
half /tmp/clusters-A "MMoE_LLM4MSR,SharedBottom_LLM4MSR" & half /tmp/clusters-B "OMoE_LLM4MSR,PLE_LLM4MSR,STAR_LLM4MSR,AITM_LLM4MSR"; wait
L=""; for b in SharedBottom MMoE OMoE PLE STAR AITM; do L="$L,$b,${b}_LLM4MSR"; done
.venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=8 --epochs=30 --lr_grid=0.001,0.003,0.01 \
  --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ --out=$R --models="${L#,}" \
  --merge=/tmp/clusters-A,/tmp/clusters-B,benchmarks/results/compare-ml-100k-msr-items-all-8seeds
# the controls: rates as chosen above (SharedBottom 0.003 ... see control/table.md)
for b in SharedBottom MMoE OMoE PLE STAR AITM; do
  rate=$(awk -F'|' -v m="${b}_LLM4MSR" '$2 ~ " "m" $" {gsub(/[ †]/, "", $3); print $3}' $R/table.md)
  OMP_NUM_THREADS=1 .venv/bin/llm4msr-compare --dataset=ml-100k-msr --seeds=3 --epochs=30 --lr_grid=$rate \
    --set knowledge_norm=none --set knowledge_store=$S --data_path=dataset/ --out=$R/control --models="${b}_LLM4MSR[shuffle]"
done
