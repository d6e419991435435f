#!/usr/bin/env bash
# AN4 (CMU census database): download -> manifests -> vocab + stats -> train -> evaluate.
#
#   recipes/an4/run.sh --data-dir ../shared/data/an4        # use an existing copy (manifests or sphere layout)
#   recipes/an4/run.sh                                      # download CMU's an4_sphere archive (needs internet)
#   recipes/an4/run.sh --stage 3 model.num_layers=5 trainer.max_epochs=30   # extra args: Hydra overrides
#
# Stages: 0 download, 1 prepare + validate manifests, 2 vocabulary + normalisation statistics,
#         3 train (train.jsonl, best model chosen on dev.jsonl), 4 evaluate on test.jsonl (greedy),
#         5 lexicon + KenLM 3-gram from train.jsonl's transcripts (lmplz: tools/install_kenlm.sh),
#         6 tune decoder.lm_weight x decoder.word_score on dev.jsonl (table + best.json in exp/tune_lm;
#           the grid: LM_WEIGHTS=0,0.25,0.5,1,1.5,2 WORD_SCORES=-1,0,1,2 in the environment),
#         7 evaluate on test.jsonl with beam search, and with beam search + LM at the tuned weights.
#         Besides AN4's own, training hears the extra corpora of settings.sh (an4_extra): other real speakers
#         (speechocean762's 99 who read no digit string; stage 1 prepares them) and the embedded eSpeak NG
#         corpus (stage 1 synthesizes it). Vocabulary, statistics, dev, test and the LM stay AN4's.
# Options: --stage N --stop-stage N --data-dir DIR --exp DIR (default recipes/an4/exp)
#          --extra NAME=WEIGHT,... (default settings.sh's an4_extra; none: AN4 alone)
#          --speechocean-dir DIR (default: speechocean762 beside the --data-dir copy)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
source "$here/settings.sh"  # an4_features, an4_model, an4_training, an4_schedule, an4_chain, an4_extra: the recipe's settings
recipe_opts=(extra speechocean-dir)
data_dir=""
opt_extra="$(IFS=,; echo "${an4_extra[*]}")"
opt_speechocean_dir=""
exp="$here/exp"
parse_args "$@"
exp="$(mkdir -p "$exp" && cd "$exp" && pwd)"
[ -n "$data_dir" ] && data_dir="$(cd "$data_dir" && pwd)"
data="$exp/data"
lang="$exp/lang"
run="$exp/train"
extra_dir() {  # the manifest folder of an extra corpus
  case "$1" in speechocean762|synthetic) echo "$data/$1" ;;
    *) echo "error: --extra: no corpus named '$1' (speechocean762, synthetic, or none)" >&2; exit 2 ;; esac
}
train_list="$data/train.jsonl"
weights=1
extras=()
if [ "$opt_extra" != none ] && [ -n "$opt_extra" ]; then
  IFS=, read -r -a extras <<<"$opt_extra"
  for e in "${extras[@]}"; do
    [[ "$e" == *=* ]] || { echo "error: --extra: '$e' is not NAME=WEIGHT" >&2; exit 2; }
    train_list="$train_list,$(extra_dir "${e%%=*}")/train.jsonl"
    weights="$weights,${e#*=}"
  done
fi
so_dir="${opt_speechocean_dir:-${data_dir:+$(dirname "$data_dir")/speechocean762}}"
if [[ ",$opt_extra" == *,speechocean762=* ]] && [ ! -d "$so_dir/train" ]; then
  echo "error: speechocean762 not found${so_dir:+ at $so_dir}: pass --speechocean-dir DIR (a copy of OpenSLR 101 with" \
    "train/), or --extra synthetic=0.1 or --extra none to train without it" >&2
  exit 2
fi

train_data=("data.train_manifest=$train_list")  # AN4 alone: one manifest, no weights
[ ${#extras[@]} -eq 0 ] || train_data=("data.train_manifest=[$train_list]" "data.train_weights=[$weights]")
defaults=(data=an4 "${train_data[@]}" "data.dev_manifest=$data/dev.jsonl" "data.vocab=$lang/vocab.json" "data.stats=$lang/stats.pt"
          "${an4_features[@]}" "${an4_model[@]}" "${an4_training[@]}" "${an4_schedule[@]}" "${an4_chain[@]}")

if run_stage 0 download; then
  if [ -n "$data_dir" ]; then
    echo "using the existing copy in $data_dir (no download)"
  else
    asr download-an4 "dir=$exp/downloads"
  fi
  mark_done 0 download
fi
src="${data_dir:-$exp/downloads/an4}"

if run_stage 1 prepare; then
  asr prepare-an4 "src=$src" "out=$data"
  for e in "${extras[@]}"; do
    case "${e%%=*}" in  # AN4's alphabet has no apostrophe: speechocean762's "it's" is written "its"
      speechocean762) asr prepare-speechocean762 "src=$so_dir" "out=$data/speechocean762" apostrophes=false ;;
      synthetic) asr synthesize "out=$data/synthetic" num_train=3000 num_dev=10 num_test=10 ;;
    esac
  done
  # every line checked (files, audio, durations, text, duplicates); fatal problems stop here, report in validation.json
  asr validate "data.manifest=[$train_list,$data/dev.jsonl,$data/test.jsonl]" "hydra.run.dir=$data"
  mark_done 1 prepare
fi

if run_stage 2 stats; then  # overwrite=true: a rerun redoes this stage's own vocab.json and stats.pt
  mapfile -t feats < <(feature_overrides)
  asr stats data=an4 "data.train_manifest=$data/train.jsonl" "output_dir=$lang" overwrite=true "${an4_features[@]}" "${feats[@]}"
  mark_done 2 stats
fi

if run_stage 3 train; then
  for e in "${extras[@]}"; do
    m="$(extra_dir "${e%%=*}")/train.jsonl"
    [ -f "$m" ] || { echo "error: $m is missing (stage 1 ran without --extra ${e%%=*}): delete $exp/.done/1.prepare and run again from stage 1" >&2; exit 2; }
  done
  # resume=true continues an interrupted run from its last checkpoint
  resume=false
  [ -f "$run/checkpoints/last.pt" ] && resume=true
  asr train "${defaults[@]}" "hydra.run.dir=$run" "trainer.resume=$resume" "${overrides[@]}"
  mark_done 3 train
fi

if run_stage 4 evaluate; then
  asr evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" "hydra.run.dir=$exp/eval_test"
  mark_done 4 evaluate
fi

if run_stage 5 lm; then
  asr build-lm "train=$data/train.jsonl" "vocab=$lang/vocab.json" "out=$lang" order=3
  mark_done 5 lm
fi

if run_stage 6 tune_lm; then
  tune_lm
  mark_done 6 tune_lm
fi

if run_stage 7 decode; then
  decode_test
  mark_done 7 decode
fi
