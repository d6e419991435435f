# Shared recipe plumbing (sourced by recipes/<corpus>/run.sh): argument parsing and stage guards.
#   --stage N / --stop-stage N   run stages N..M only
#   --exp DIR                    where data/, lang/ and the run go (default: exp/<corpus> under the recipe)
#   anything else                passed to asr train as Hydra overrides (model.num_layers=5 ...)
# A recipe's own options (--name VALUE) are listed in recipe_opts before parse_args; the value lands in
# opt_<name> (dashes become underscores), empty when the option is not given.
recipe_opts=()
stage=0
stop_stage=100
overrides=()
parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --stage) stage="$2"; shift 2 ;;
      --stop-stage|--stop_stage) stop_stage="$2"; shift 2 ;;
      --data-dir|--data_dir) data_dir="$2"; shift 2 ;;
      --exp) exp="$2"; shift 2 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 0 ;;
      --*)
        local name="${1#--}"
        if [[ " ${recipe_opts[*]} " == *" $name "* ]]; then
          [ $# -ge 2 ] || { echo "error: $1 needs a value (see --help)" >&2; exit 2; }
          printf -v "opt_${name//-/_}" '%s' "$2"; shift 2
        else
          echo "error: unknown option $1 (see --help)" >&2; exit 2
        fi ;;
      *) overrides+=("$1"); shift ;;
    esac
  done
}

# feature_overrides: the overrides that change the front end (features=..., features.x=..., +features.x=...) or
# the units (data.tokenizer, data.vocab_size), which the statistics stage must see too, or training refuses its
# stats.pt or vocab.json
feature_overrides() {
  local o
  for o in "${overrides[@]}"; do
    case "$o" in features=*|features.*|+features.*|++features.*|data.tokenizer=*|data.vocab_size=*) printf '%s\n' "$o" ;; esac
  done
}

# The lexicon + LM stages of a recipe with a dev set; they read $run/model.pt, $data/{dev,test}.jsonl, $lang, $exp.
# tune_lm: decoder.lm_weight x decoder.word_score on dev.jsonl (the grid: LM_WEIGHTS, WORD_SCORES in the
# environment), table + best.json in $exp/tune_lm. decode_test: test.jsonl with beam search, and with the
# lexicon + LM at tune_lm's best weights.
lm_opts=()
_lm_opts() { lm_opts=(decoder=beam_lm "decoder.lexicon=$lang/lexicon.txt" "decoder.lm=$lang/lm_3gram.bin"); }
tune_lm() {
  _lm_opts
  asr evaluate -m "model=$run/model.pt" "data.manifest=$data/dev.jsonl" "${lm_opts[@]}" \
    "decoder.lm_weight=${LM_WEIGHTS:-0,0.25,0.5,1,1.5,2}" "decoder.word_score=${WORD_SCORES:--1,0,1,2}" \
    "hydra.sweep.dir=$exp/tune_lm"
  asr eval-table "dir=$exp/tune_lm"
}
decode_test() {
  local best
  _lm_opts
  asr evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" decoder=beam "hydra.run.dir=$exp/eval_test_beam"
  best=$(python -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["overrides"]))' "$exp/tune_lm/best.json")
  # shellcheck disable=SC2086  # $best is a list of overrides
  asr evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" "${lm_opts[@]}" $best \
    "hydra.run.dir=$exp/eval_test_beam_lm"
}

# run_stage N NAME: true when stage N is selected and not already done; done-markers live in $exp/.done/
run_stage() {
  local n="$1" name="$2"
  if [ "$n" -lt "$stage" ] || [ "$n" -gt "$stop_stage" ]; then return 1; fi
  if [ -f "$exp/.done/$n.$name" ]; then
    echo "stage $n ($name): already done ($exp/.done/$n.$name); delete it to redo"
    return 1
  fi
  echo "=== stage $n: $name ($(date +%H:%M:%S))"
  return 0
}

mark_done() {
  mkdir -p "$exp/.done"
  touch "$exp/.done/$1.$2"
}

# The stages call `asr`: from the active environment, else from the checkout's own .venv (make install), else a
# clear error before any stage runs
if ! command -v asr >/dev/null 2>&1; then
  _venv="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin"
  if [ -x "$_venv/asr" ]; then
    PATH="$_venv:$PATH"
  else
    echo "error: the asr command is not installed here: run \`make install\` (then \`source .venv/bin/activate\`)" >&2
    exit 2
  fi
fi
