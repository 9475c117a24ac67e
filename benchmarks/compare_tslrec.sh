#!/usr/bin/env bash
# The TSLRec comparison of the README on amazon-art-office (resumable: rerun the same command after a stop; finished
# runs are reused). SASRec and GRU4Rec, each plain / TSLRec / TSLRec with shuffled item vectors (the control) /
# raw-LLM item vectors (no SFT), NDCG@10 under full ranking, 3 reported seeds + the learning-rate seed. The item
# stores are the ones benchmarks/tslrec.py builds (the same tslrec_* settings: found by their fingerprint, built if
# missing). Every model is small enough for a CPU: width 32, the latest 20 items (SASRec: 2 layers).
# Environment: MODELS, EPOCHS, LR_GRID, OUT_DIR, LLM4MSR_BIN (folder of the console scripts, default .venv/bin);
# further llm4msr-compare flags pass through ("$@": --report_only, --merge=..., --set tslrec_extract_batch_size=256).
cd "$(dirname "$0")/.."
PRE='{hidden_size: 32, inner_size: 64, n_layers: 2, n_heads: 2, MAX_ITEM_LIST_LENGTH: 20, train_batch_size: 2048, stopping_step: 3}'
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ${LLM4MSR_BIN:-.venv/bin}/llm4msr-compare --dataset=amazon-art-office --metric=ndcg@10 \
  --seeds=3 --epochs=${EPOCHS:-8} --lr_grid=${LR_GRID:-0.001,0.003,0.01} --data_path=dataset/ \
  --out=${OUT_DIR:-benchmarks/results/compare-tslrec-amazon-art-office} \
  --set hidden_size=32 --set inner_size=64 --set n_layers=2 --set n_heads=2 --set embedding_size=32 \
  --set MAX_ITEM_LIST_LENGTH=20 --set train_batch_size=2048 --set stopping_step=3 \
  --set tslrec_max_users=320 --set tslrec_pretrain_epochs=8 --set tslrec_max_length=320 \
  --set "tslrec_pretrain_config=$PRE" \
  --models="${MODELS:-SASRec,SASRec_TSLRec,SASRec_TSLRec[shuffle],SASRec_TSLRec[tslrec_sft=False],GRU4Rec,GRU4Rec_TSLRec,GRU4Rec_TSLRec[shuffle],GRU4Rec_TSLRec[tslrec_sft=False]}" "$@"
