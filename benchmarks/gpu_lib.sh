# Shell helpers of the GPU lease scripts (gpu_check.sh, gpu_amazon.sh, gpu_align.sh). A script sources this file and
# calls lease_start, which sets OUT (the output folder), BUDGET (seconds for the whole script), LANES, START (its
# start, date +%s) and ROOT (the repository, the working directory); the helpers below read them.

lease_start() {  # lease_start SCRIPT DEFAULT_LANES OUT_DIR [SECONDS] [LANES]: the command line of a lease script
  # (a ${3:?} inside $( ) would end only the subshell: the script would go on writing to /)
  local usage="usage: $1 OUT_DIR [SECONDS]${2:+ [LANES: a comma list of $2]}"
  [ -n "${3:-}" ] || { echo "$usage" >&2; exit 2; }
  [ -n "$2" ] || [ -z "${5:-}" ] || { echo "$1 has no lanes (everything runs): '$5' given; $usage" >&2; exit 2; }
  OUT=$(mkdir -p "$3" && cd "$3" && pwd) || exit 2
  BUDGET=${4:-540}
  LANES=",${5:-$2},"
  START=$(date +%s)
  cd "$(dirname "${BASH_SOURCE[0]}")/.." && ROOT=$PWD
  export RECBOLE_LLM4MSR_CACHE=${RECBOLE_LLM4MSR_CACHE:-$OUT/cache} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
}

has() { case "$LANES" in *",$1,"*) return 0;; *) return 1;; esac; }  # has LANE: LANE was asked for

left() { echo $(( BUDGET - ($(date +%s) - START) )); }  # seconds left of BUDGET

step() {  # step NAME LIMIT_SECONDS COMMAND...: in its own folder (RecBole writes log/ and saved/ to the cwd)
  local name=$1 limit=$2 t rc; shift 2
  [ "$limit" -gt "$(( $(left) - 20 ))" ] && limit=$(( $(left) - 20 ))
  if [ "$limit" -le 10 ]; then printf '%s\tskipped\t0\n' "$name" >> "$OUT/steps.tsv"; return 1; fi
  mkdir -p "$OUT/work/$name"; t=$(date +%s)
  (cd "$OUT/work/$name" && timeout "$limit" "$@") > "$OUT/$name.log" 2>&1; rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t ))" >> "$OUT/steps.tsv"
  echo "== $name: exit $rc after $(( $(date +%s) - t )) s"; tail -n 4 "$OUT/$name.log"
  return $rc
}

wait_for() {  # wait_for FILE: until it exists (or the time is nearly out)
  until [ -e "$1" ]; do [ "$(left)" -le 60 ] && return 1; sleep 5; done
}

environment() {  # the GPU, the library versions and the CPU count, into OUT/env.txt
  { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import importlib.metadata as m, importlib.util as u, torch
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), *(f'{p} {m.version(p)}' for p in
      ('transformers', 'peft', 'numpy', 'pandas', 'gguf', 'recbole') if u.find_spec(p)))"
    nproc; } > "$OUT/env.txt" 2>&1
}
