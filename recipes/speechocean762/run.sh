#!/usr/bin/env bash
# speechocean762 (a Kaldi data directory: non-native English, Mandarin L1, children and adults, 125 speakers):
# import -> validate -> speaker-disjoint dev and test -> vocab + stats -> train -> evaluate -> lexicon + KenLM
# -> tune on dev -> decode test.
#
#   recipes/speechocean762/run.sh --data-dir ../shared/data/speechocean762
#   recipes/speechocean762/run.sh --data-dir ../shared/data/speechocean762 --an4-dir ../shared/data/an4 \
#       --exp recipes/speechocean762/exp_an4                  # AN4's training set mixed in (AN4_WEIGHT, default 1)
#
# Stages: 1 import the Kaldi directory (wav.scp pipes refused) + validate, 2 hold out dev and test speakers
#         (10 % each, seeded: nobody in dev or test is heard in training), 3 vocabulary + normalisation
#         statistics, 4 train (best model on dev), 5 evaluate on test (greedy), 6 lexicon + KenLM 3-gram from
#         train.jsonl, 7 tune decoder.lm_weight x decoder.word_score on dev, 8 decode test with beam search and
#         with the lexicon + 3-gram at the tuned weights.
# Options: --stage N --stop-stage N --data-dir DIR (the directory holding train/; required)
#          --an4-dir DIR (an AN4 copy: its train set joins training) --exp DIR (default recipes/speechocean762/exp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
recipe_opts=(an4-dir)
data_dir=""
opt_an4_dir=""
exp="$here/exp"
parse_args "$@"
[ -n "$data_dir" ] || { echo "error: --data-dir is required (the speechocean762 directory that holds train/)" >&2; exit 2; }
data_dir="$(cd "$data_dir" && pwd)"
exp="$(mkdir -p "$exp" && cd "$exp" && pwd)"
data="$exp/data"
lang="$exp/lang"
run="$exp/train"

train=("$data/train.jsonl")
weights=(1)
if [ -n "$opt_an4_dir" ]; then
  opt_an4_dir="$(cd "$opt_an4_dir" && pwd)"
  train+=("$data/an4/train.jsonl")
  weights+=("${AN4_WEIGHT:-1}")
fi
train_list="[$(IFS=,; echo "${train[*]}")]"
defaults=(data=speechocean762 "data.train_manifest=$train_list" "data.train_weights=[$(IFS=,; echo "${weights[*]}")]"
          "data.dev_manifest=$data/dev.jsonl" "data.vocab=$lang/vocab.json" "data.stats=$lang/stats.pt"
          # 2.3 h of training audio: the AN4 recipe's 3 x 256 BiGRU and augmentation; 20 epochs hear 46 h of audio, as
          # 70 epochs of AN4 did
          model.rnn_type=gru model.hidden_size=256 model.num_layers=3 model.dropout=0.2 model.edge_pad_s=0.3
          augment=full trainer.max_epochs=20 data.max_batch_duration_s=60)

if run_stage 1 import; then
  asr import-kaldi "data_dir=$data_dir/train" "out=$data/all.jsonl" "root=$data_dir"
  [ -z "$opt_an4_dir" ] || asr prepare-an4 "src=$opt_an4_dir" "out=$data/an4"
  checked="$data/all.jsonl"
  [ -z "$opt_an4_dir" ] || checked="$checked,$data/an4/train.jsonl"
  asr validate "data.manifest=[$checked]" "hydra.run.dir=$data"
  mark_done 1 import
fi

if run_stage 2 split; then  # dev: 10 % of the speakers; test: 10 % of the rest (1/9), both seeded
  asr split-speakers "manifest=$data/all.jsonl" "train_out=$data/train_dev.jsonl" "dev_out=$data/test.jsonl" \
    dev_fraction=0.1 seed=0
  asr split-speakers "manifest=$data/train_dev.jsonl" "train_out=$data/train.jsonl" "dev_out=$data/dev.jsonl" \
    dev_fraction=0.111 seed=1
  mark_done 2 split
fi

if run_stage 3 stats; then  # overwrite=true: a rerun redoes this stage's own vocab.json and stats.pt
  mapfile -t feats < <(feature_overrides)
  asr stats data=speechocean762 "data.train_manifest=$train_list" "output_dir=$lang" overwrite=true "${feats[@]}"
  mark_done 3 stats
fi

if run_stage 4 train; then  # resume=true continues an interrupted run from its last checkpoint
  resume=false
  [ -f "$run/checkpoints/last.pt" ] && resume=true
  asr train "${defaults[@]}" "hydra.run.dir=$run" "trainer.resume=$resume" "${overrides[@]}"
  mark_done 4 train
fi

if run_stage 5 evaluate; then
  asr evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" "hydra.run.dir=$exp/eval_test"
  mark_done 5 evaluate
fi

if run_stage 6 lm; then  # from speechocean762's own training text (test words it never read are out of the lexicon)
  asr build-lm "train=$data/train.jsonl" "vocab=$lang/vocab.json" "out=$lang" order=3
  mark_done 6 lm
fi

if run_stage 7 tune_lm; then
  tune_lm
  mark_done 7 tune_lm
fi

if run_stage 8 decode; then
  decode_test
  mark_done 8 decode
fi
