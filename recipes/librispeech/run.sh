#!/usr/bin/env bash
# LibriSpeech (OpenSLR 12): download -> manifests -> BPE pieces + statistics -> train -> evaluate on dev/test.
#
#   recipes/librispeech/run.sh                                  # train-clean-100 + dev/test clean/other (SIZE=100h)
#   SIZE=960h NPROC=8 recipes/librispeech/run.sh                # all 960 h, DDP on 8 GPUs (torchrun)
#   recipes/librispeech/run.sh --data-dir /data/LibriSpeech     # a local copy of the tree: no download
#   recipes/librispeech/run.sh --stage 3 model.num_layers=6     # extra args: Hydra overrides for asr train
#
# Stages: 0 download (checksums verified, resumable; skipped with --data-dir), 1 prepare one manifest per subset,
#         2 BPE tokenizer (sentencepiece) + normalisation statistics on the training subsets, 3 train (best epoch
#         on the dev subsets, their WERs logged one by one), 4 evaluate every dev and test subset (greedy).
# Options: --stage N --stop-stage N --data-dir DIR --exp DIR (default recipes/librispeech/exp)
# Environment: SIZE=100h|960h (settings.sh); TRAIN_SUBSETS, DEV_SUBSETS, TEST_SUBSETS (space-separated subset
#   names; defaults: the SIZE's training sets, "dev-clean dev-other", "test-clean test-other"); NPROC=N processes
#   for torchrun (default 1: plain asr train); BASE_URL (a mirror serving <subset>.tar.gz) and CHECKSUMS (a
#   sha256sum file for it) for stage 0.
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

size="${SIZE:-100h}"
source "$here/settings.sh"  # ls_train_subsets, ls_tokenizer, ls_model, ls_training for this size
read -r -a train_subsets <<< "${TRAIN_SUBSETS:-${ls_train_subsets[*]}}"
read -r -a dev_subsets <<< "${DEV_SUBSETS:-dev-clean dev-other}"
read -r -a test_subsets <<< "${TEST_SUBSETS:-test-clean test-other}"
unique() { printf '%s\n' "$@" | awk '!seen[$0]++'; }
mapfile -t all_subsets < <(unique "${train_subsets[@]}" "${dev_subsets[@]}" "${test_subsets[@]}")
mapfile -t eval_subsets < <(unique "${dev_subsets[@]}" "${test_subsets[@]}")
hydra_list() { local IFS=,; echo "[$*]"; }  # hydra_list a b c -> [a,b,c]
manifests() { local s out=(); for s in "$@"; do out+=("$data/$s.jsonl"); done; hydra_list "${out[@]}"; }

defaults=(data=librispeech "data.train_manifest=$(manifests "${train_subsets[@]}")"
          "data.dev_manifest=$(manifests "${dev_subsets[@]}")" "data.vocab=$lang/vocab.json" "data.stats=$lang/stats.pt"
          "${ls_tokenizer[@]}" "${ls_model[@]}" "${ls_training[@]}")

if run_stage 0 download; then
  if [ -n "$data_dir" ]; then
    echo "using the existing copy in $data_dir (no download)"
  else
    asr download-librispeech "dir=$exp/downloads" "subsets=$(hydra_list "${all_subsets[@]}")" \
      ${BASE_URL:+"base_url=$BASE_URL"} ${CHECKSUMS:+"checksums=$CHECKSUMS"}
  fi
  mark_done 0 download
fi
src="${data_dir:-$exp/downloads/LibriSpeech}"

if run_stage 1 prepare; then
  asr prepare-librispeech "src=$src" "out=$data" "subsets=$(hydra_list "${all_subsets[@]}")"
  mark_done 1 prepare
fi

if run_stage 2 tokenizer_stats; then  # overwrite=true: a rerun redoes this stage's own files
  mapfile -t feats < <(feature_overrides)  # data.tokenizer / data.vocab_size too
  asr stats data=librispeech "data.train_manifest=$(manifests "${train_subsets[@]}")" "output_dir=$lang" \
    overwrite=true "${ls_tokenizer[@]}" "${feats[@]}"
  mark_done 2 tokenizer_stats
fi

if run_stage 3 train; then
  resume=false  # true: an interrupted run continues from its last checkpoint
  [ -f "$run/checkpoints/last.pt" ] && resume=true
  launch=(asr train)
  [ "${NPROC:-1}" -gt 1 ] && launch=(torchrun --standalone "--nproc-per-node=$NPROC" -m asr train)
  "${launch[@]}" "${defaults[@]}" "hydra.run.dir=$run" "trainer.resume=$resume" "${overrides[@]}"
  mark_done 3 train
fi

if run_stage 4 evaluate; then
  for s in "${eval_subsets[@]}"; do
    echo "--- $s"
    asr evaluate "model=$run/model.pt" "data.manifest=$data/$s.jsonl" "hydra.run.dir=$exp/eval_$s"
  done
  mark_done 4 evaluate
fi
