#!/usr/bin/env bash
# AN4 (CMU census database): download -> manifests -> vocab + stats -> train -> evaluate.
#
#   recipes/an4/run.sh --data-dir ../shared/data/an4        # use an existing copy (manifests or sphere layout)
#   recipes/an4/run.sh                                      # download CMU's an4_sphere archive (needs internet)
#   recipes/an4/run.sh --stage 3 model.num_layers=5 trainer.max_epochs=30   # extra args: Hydra overrides
#
# Stages: 0 download, 1 prepare + validate manifests, 2 vocabulary + normalisation statistics,
#         3 train (train.jsonl, best model chosen on dev.jsonl), 4 evaluate on test.jsonl.
# Options: --stage N --stop-stage N --data-dir DIR --exp DIR (default recipes/an4/exp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../common.sh"
data_dir=""
exp="$here/exp"
parse_args "$@"
exp="$(mkdir -p "$exp" && cd "$exp" && pwd)"
[ -n "$data_dir" ] && data_dir="$(cd "$data_dir" && pwd)"
data="$exp/data"
lang="$exp/lang"
run="$exp/train"

# The AN4 recipe's model: 4 x 256 BiLSTM, about 5.5 M parameters; 35 epochs fit 45 minutes on 2 cores.
defaults=(data=an4 "data.train_manifest=$data/train.jsonl" "data.dev_manifest=$data/dev.jsonl"
          "data.test_manifest=$data/test.jsonl" "data.vocab=$lang/vocab.json" "data.stats=$lang/stats.pt"
          model.hidden_size=256 model.num_layers=4 model.dropout=0.2 trainer.max_epochs=35
          data.max_batch_duration_s=60)

if run_stage 0 download; then
  if [ -n "$data_dir" ]; then
    echo "using the existing copy in $data_dir (no download)"
  else
    python -m asr.corpora.an4 download --dir "$exp/downloads"
  fi
  mark_done 0 download
fi
src="${data_dir:-$exp/downloads/an4}"

if run_stage 1 prepare; then
  python -m asr.corpora.an4 prepare --src "$src" --out "$data"
  # every line checked (files, audio, durations, text, duplicates); fatal problems stop here, report in validation.json
  asr-validate "data.manifest=[$data/train.jsonl,$data/dev.jsonl,$data/test.jsonl]" "hydra.run.dir=$data"
  mark_done 1 prepare
fi

if run_stage 2 stats; then
  asr-stats data=an4 "data.train_manifest=$data/train.jsonl" "output_dir=$lang"
  mark_done 2 stats
fi

if run_stage 3 train; then
  # resume=true continues an interrupted run from its last checkpoint
  resume=false
  [ -f "$run/checkpoints/last.pt" ] && resume=true
  asr-train "${defaults[@]}" "hydra.run.dir=$run" "trainer.resume=$resume" "${overrides[@]}"
  mark_done 3 train
fi

if run_stage 4 evaluate; then
  asr-evaluate "model=$run/model.pt" "data.manifest=$data/test.jsonl" "hydra.run.dir=$exp/eval_test"
  mark_done 4 evaluate
fi
