#!/usr/bin/env bash
# AN4 generalization ablation: the recipe's settings, then each recording-chain part (or data source) added
# on its own, every run on the same seed and schedule; then every model under benchmarks/generalization.py
# (recipes/an4/RESULTS.md, "One part at a time").
#
#   recipes/an4/ablation.sh --jobs 2                               # 2 trainings side by side, 1 thread each
#   recipes/an4/ablation.sh --only recipe,silence --epochs 10      # a subset, a shorter schedule
#   recipes/an4/ablation.sh --speechocean ../shared/data/speechocean762   # adds the speechocean762 row
#
# The base is the recipe's model and training without its recording chain and extra corpora (settings.sh's
# an4_chain, an4_extra); each part adds one of them. "synthetic" is the embedded eSpeak NG corpus at weight 0.1,
# "speechocean762" that corpus's 99 speakers who read no digit string at weight 0.2.
#
# Needs recipes/an4/run.sh's stages 1-5 in --exp (manifests, vocab + statistics, lexicon + 3-gram).
# Jobs live in <exp>/ablation/<name>; finished ones are skipped and interrupted ones resume, so the command
# can be run again to go on. The scores land in <exp>/ablation/generalization.json.
# Options: --exp DIR (default recipes/an4/exp) --jobs N (default 1) --epochs N (default 30)
#          --only NAME,... (default all) --speechocean DIR (speechocean762: the data-source row and the
#          held-out digit readers) --conditions a,b (default all of generalization.py's) --out NAME (default
#          ablation); anything else: Hydra overrides for every job
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exp="$here/exp"
jobs=1
epochs=30
only=""
speechocean=""
conditions=""
out=ablation
overrides=()
while [ $# -gt 0 ]; do
  case "$1" in
    --exp) exp="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --speechocean) speechocean="$(cd "$2" && pwd)"; shift 2 ;;
    --conditions) conditions="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//' | head -n -1; exit 0 ;;
    --*) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) overrides+=("$1"); shift ;;
  esac
done
case "$jobs$epochs" in *[!0-9]*) echo "error: --jobs and --epochs take positive integers" >&2; exit 2 ;; esac
[ "$jobs" -gt 0 ] && [ "$epochs" -gt 0 ] || { echo "error: --jobs and --epochs take positive integers" >&2; exit 2; }
[ -d "$exp" ] || { echo "error: $exp does not exist: run recipes/an4/run.sh --stop-stage 5 --exp $exp first" >&2; exit 2; }
exp="$(cd "$exp" && pwd)"
for f in data/train.jsonl data/dev.jsonl data/test.jsonl lang/vocab.json lang/stats.pt lang/lexicon.txt lang/lm_3gram.bin; do
  [ -f "$exp/$f" ] || { echo "error: $exp/$f is missing: run recipes/an4/run.sh --stop-stage 5 --exp $exp first" >&2; exit 2; }
done
abl="$exp/$out"
mkdir -p "$abl"
source "$here/settings.sh"

# name and the overrides it adds to the recipe's settings (one part each; "chain" is all of them together)
codecs='augment.codecs=[ulaw,alaw,gsm,mp3]'
declare -A parts=(
  [recipe]=""
  [silence]="augment.silence_prob=0.3"
  [babble]="augment.babble_prob=0.2"
  [tilt]="augment.tilt_prob=0.3"
  [bandlimit]="augment.bandlimit_prob=0.15"
  [codec]="augment.codec_prob=0.15 $codecs"
  [rooms]="augment.reverb=true"
  [chain]="${an4_chain[*]}"
)
order=(recipe silence babble tilt bandlimit codec rooms chain)
if [ -n "$speechocean" ]; then
  # the 99 speechocean762 speakers who read no digit strings (the 26 who do are generalization.py's held-out set)
  # (AN4's alphabet has no apostrophe: "it's" is written "its")
  [ -f "$abl/speechocean762/train.jsonl" ] || asr prepare-speechocean762 "src=$speechocean" "out=$abl/speechocean762" apostrophes=false
  parts[speechocean762]="data.train_manifest=[$exp/data/train.jsonl,$abl/speechocean762/train.jsonl] data.train_weights=[1,0.2]"
  order+=(speechocean762)
fi
if [ -z "$only" ] || [[ ",$only," == *,synthetic,* ]]; then  # the embedded eSpeak NG corpus: 58 more (synthetic) voices
  [ -f "$abl/synthetic/train.jsonl" ] || asr synthesize "out=$abl/synthetic" num_train=3000 num_dev=10 num_test=10
  parts[synthetic]="data.train_manifest=[$exp/data/train.jsonl,$abl/synthetic/train.jsonl] data.train_weights=[1,0.1]"
  order+=(synthetic)
fi
[ -n "$only" ] && IFS=, read -r -a order <<<"$only"
for name in "${order[@]}"; do
  [ -n "${parts[$name]+x}" ] || { echo "error: --only: no part named '$name' (parts: ${!parts[*]})" >&2; exit 2; }
done

printf -v ABL_COMMON '%q ' data=an4 "data.train_manifest=$exp/data/train.jsonl" "data.dev_manifest=$exp/data/dev.jsonl" \
  "data.vocab=$exp/lang/vocab.json" "data.stats=$exp/lang/stats.pt" "${an4_features[@]}" "${an4_model[@]}" \
  "${an4_training[@]}" "trainer.max_epochs=$epochs" "trainer.threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))" \
  trainer.progress=false "${overrides[@]}"
export ABL_COMMON abl
for name in "${order[@]}"; do export "ABL_PART_$name=${parts[$name]}"; done
run_job() {  # run_job NAME: the recipe's settings plus ABL_PART_<NAME>'s overrides
  local name="$1" job="$abl/$1" resume=false common part
  part="ABL_PART_$name"
  read -r -a part <<<"${!part}"
  if [ -f "$job/train_summary.json" ]; then echo "$(date +%H:%M:%S) $name: done already"; return 0; fi
  [ -f "$job/checkpoints/last.pt" ] && resume=true
  eval "common=($ABL_COMMON)"
  echo "$(date +%H:%M:%S) $name: training (resume=$resume)"
  if ! asr train "${common[@]}" "${part[@]}" "trainer.resume=$resume" "hydra.run.dir=$job" >"$job.log" 2>&1; then
    echo "$(date +%H:%M:%S) $name: training FAILED, see $job.log" >&2; return 1
  fi
  echo "$(date +%H:%M:%S) $name: trained"
}
export -f run_job
status=0
printf '%s\n' "${order[@]}" | xargs -P "$jobs" -I {} bash -c 'run_job {}' || status=$?
[ "$status" -eq 0 ] || { echo "some jobs failed (their logs: $abl/*.log); run the command again to retry them" >&2; exit "$status"; }

models=() settings=()
for name in "${order[@]}"; do models+=(--model "$name=$abl/$name/model.pt"); settings+=(--lm-setting "$name=0,0"); done
held_out=()
[ -n "$speechocean" ] && held_out+=(--speechocean "$speechocean")
[ -n "$conditions" ] && held_out+=(--conditions "$conditions")
python "$here/../../benchmarks/generalization.py" --manifest "$exp/data/test.jsonl" "${models[@]}" \
  --lexicon "$exp/lang/lexicon.txt" --lm "$exp/lang/lm_3gram.bin" "${settings[@]}" "${held_out[@]}" \
  --threads "$(nproc)" > "$abl/generalization.json.tmp"
mv "$abl/generalization.json.tmp" "$abl/generalization.json"
python "$here/../../benchmarks/ablation_table.py" "$abl" "${order[@]}" | tee "$abl/ablation_table.md"
