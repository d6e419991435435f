#!/usr/bin/env bash
# AN4 model-size sweep: every (cell, layers, hidden size) trained with the recipe's settings, each
# scored on test, collected into one table + figure (docs/model-and-decoding.md, "Choosing size and depth").
#
#   recipes/an4/size_sweep.sh                                    # 3 x 4 BiLSTM grid, one job at a time
#   recipes/an4/size_sweep.sh --jobs 16 --rnn lstm,gru           # on one GPU: 16 trainings side by side
#   recipes/an4/size_sweep.sh --sizes 256 --layers 3,4 trainer.max_epochs=35   # extra args: Hydra overrides
#
# Needs recipes/an4/run.sh's stages 1-2 in --exp (manifests in data/, vocab + statistics in lang/).
# Each job is what `asr train -m model.rnn_type=... model.num_layers=... model.hidden_size=...` would
# run, in its own folder <exp>/size/<rnn>_<layers>x<hidden>, followed by asr evaluate on test.jsonl.
# Finished jobs are skipped and interrupted ones resume, so the command can be run again to go on.
# Options: --exp DIR (default recipes/an4/exp) --jobs N (default 1) --sizes 128,256,384
#          --layers 2,3,4,5 --rnn lstm (lstm,gru: both) --out NAME (default size)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exp="$here/exp"
jobs=1
sizes=128,256,384
layers=2,3,4,5
rnns=lstm
out=size
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --exp) exp="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    --rnn) rnns="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 0 ;;
    --*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) overrides+=("$1"); shift ;;
  esac
done
[ -d "$exp" ] || { echo "error: $exp does not exist: run recipes/an4/run.sh --stop-stage 2 --exp $exp first" >&2; exit 2; }
exp="$(cd "$exp" && pwd)"
for f in data/train.jsonl data/dev.jsonl data/test.jsonl lang/vocab.json lang/stats.pt; do
  [ -f "$exp/$f" ] || { echo "error: $exp/$f is missing: run recipes/an4/run.sh --stop-stage 2 --exp $exp first" >&2; exit 2; }
done
case "$jobs" in ''|*[!0-9]*|0) echo "error: --jobs must be a positive integer, got '$jobs'" >&2; exit 2 ;; esac
sweep="$exp/$out"
mkdir -p "$sweep"
cores=$(nproc)
threads=$(( cores / jobs > 0 ? cores / jobs : 1 ))

# the recipe's training settings (recipes/an4/settings.sh), then the command line's overrides; the
# model size is left to the grid. Quoted, as the exported function cannot take an array: values may hold spaces
source "$here/settings.sh"
export SWEEP_EXP="$exp" SWEEP_THREADS="$threads"
printf -v SWEEP_OVERRIDES '%q ' "${an4_features[@]}" "${an4_training[@]}" "${overrides[@]}"
export SWEEP_OVERRIDES
run_job() {  # run_job RNN LAYERS HIDDEN
  local rnn="$1" nl="$2" hs="$3"
  local job="$sweep_dir/${rnn}_${nl}x${hs}" e="$SWEEP_EXP"
  if [ -f "$job/train_summary.json" ] && [ -f "$job/eval_test/summary.json" ]; then
    echo "$(date +%H:%M:%S) ${rnn} ${nl}x${hs}: done already"; return 0
  fi
  local resume=false extra
  eval "extra=($SWEEP_OVERRIDES)"
  [ -f "$job/checkpoints/last.pt" ] && [ ! -f "$job/train_summary.json" ] && resume=true
  echo "$(date +%H:%M:%S) ${rnn} ${nl}x${hs}: training (resume=$resume)"
  if ! { [ -f "$job/train_summary.json" ] || asr train data=an4 "data.train_manifest=$e/data/train.jsonl" \
        "data.dev_manifest=$e/data/dev.jsonl" "data.vocab=$e/lang/vocab.json" "data.stats=$e/lang/stats.pt" \
        "model.rnn_type=$rnn" "model.num_layers=$nl" "model.hidden_size=$hs" \
        "trainer.threads=$SWEEP_THREADS" trainer.progress=false "trainer.resume=$resume" \
        "${extra[@]}" "hydra.run.dir=$job" >"$job.log" 2>&1; }; then
    echo "$(date +%H:%M:%S) ${rnn} ${nl}x${hs}: training FAILED, see $job.log" >&2; return 1
  fi
  if ! asr evaluate "model=$job/model.pt" "data.manifest=$e/data/test.jsonl" "hydra.run.dir=$job/eval_test" \
        >>"$job.log" 2>&1; then
    echo "$(date +%H:%M:%S) ${rnn} ${nl}x${hs}: test evaluation FAILED, see $job.log" >&2; return 1
  fi
  echo "$(date +%H:%M:%S) ${rnn} ${nl}x${hs}: $(python -c 'import json, sys; print("test WER %.2f %%" % (100 * json.load(open(sys.argv[1]))["wer"]))' "$job/eval_test/summary.json")"
}
export -f run_job
export sweep_dir="$sweep"

# largest models first: they take longest, so the slots drain evenly
grid=()
for rnn in ${rnns//,/ }; do
  for hs in ${sizes//,/ }; do
    for nl in ${layers//,/ }; do grid+=("$(( hs * hs * nl )) $rnn $nl $hs"); done
  done
done
echo "sweep $sweep: ${#grid[@]} jobs, $jobs at a time, $threads CPU thread(s) each"
status=0
printf '%s\n' "${grid[@]}" | sort -rn | cut -d' ' -f2- | xargs -P "$jobs" -L 1 bash -c 'run_job "$@"' _ || status=$?
asr sweep-table "dir=$sweep"
[ "$status" -eq 0 ] || echo "some jobs failed (their logs: $sweep/*.log); run the command again to retry them" >&2
exit "$status"
