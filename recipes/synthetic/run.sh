#!/usr/bin/env bash
# The embedded default: a corpus synthesized offline with eSpeak NG (AN4-style prompts, held-out test voices),
# a 3 x 192 BiLSTM-CTC trained on it, and the test-set WER. No downloads; about 10 minutes on 2 cores
# (13 with a fresh install).
#
#   recipes/synthetic/run.sh                              # everything
#   recipes/synthetic/run.sh --stage 2 model=blstm        # extra args: Hydra overrides for asr train
#
# Stages: 0 synthesize + validate, 1 vocabulary + normalisation statistics, 2 train (best on dev), 3 evaluate on test.
# Options: --stage N --stop-stage N --exp DIR (default recipes/synthetic/exp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
exp="$here/exp"
num_train="${NUM_TRAIN:-3000}"  # corpus size; the tests use a tiny one
num_dev="${NUM_DEV:-200}"
num_test="${NUM_TEST:-300}"
parse_args "$@"
exp="$(mkdir -p "$exp" && cd "$exp" && pwd)"
data="$exp/data"
lang="$exp/lang"
run="$exp/train"

defaults=(data=synthetic "data.train_manifest=$data/train.jsonl" "data.dev_manifest=$data/dev.jsonl"
          "data.vocab=$lang/vocab.json" "data.stats=$lang/stats.pt"
          model=small trainer.max_epochs=5
          # ~200 updates per epoch: the first few hundred CTC updates are spent leaving the all-blank plateau
          data.max_batch_duration_s=40 optim.warmup_steps=100 optim.lr=2e-3)

if run_stage 0 synthesize; then
  asr synthesize "out=$data" "num_train=$num_train" "num_dev=$num_dev" "num_test=$num_test"
  asr validate "data.manifest=[$data/train.jsonl,$data/dev.jsonl,$data/test.jsonl]" "hydra.run.dir=$data"
  mark_done 0 synthesize
fi

if run_stage 1 stats; then  # overwrite=true: a rerun redoes this stage's own vocab.json and stats.pt
  mapfile -t feats < <(feature_overrides)
  asr stats data=synthetic "data.train_manifest=$data/train.jsonl" "output_dir=$lang" overwrite=true "${feats[@]}"
  mark_done 1 stats
fi

if run_stage 2 train; then
  resume=false
  [ -f "$run/checkpoints/last.pt" ] && resume=true
  asr train "${defaults[@]}" "hydra.run.dir=$run" "trainer.resume=$resume" "${overrides[@]}"
  mark_done 2 train
fi

if run_stage 3 evaluate; then
  asr evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" "hydra.run.dir=$exp/eval_test"
  mark_done 3 evaluate
fi
