# The LibriSpeech recipe's model and training settings per size (sourced by run.sh, not run): SIZE=100h or 960h.
#
# Sized for GPUs (one or more, DDP through torchrun with NPROC=N): a 5 x 512 BiLSTM (about 28 M parameters
# with 40 MFCC x 3) on train-clean-100 with 256 BPE pieces, and a 5 x 640 BiLSTM (about 43 M) on all 960 h with
# 512 pieces. data.max_batch_duration_s is per process: a global batch is NPROC times it. Expected cost:
# recipes/librispeech/RESULTS.md (hours of audio x epochs / measured throughput, benchmarks/gpu.py).
case "$size" in
  100h)
    ls_train_subsets=(train-clean-100)
    ls_tokenizer=(data.tokenizer=bpe data.vocab_size=256)
    ls_model=(model.rnn_type=lstm model.hidden_size=512 model.num_layers=5 model.dropout=0.2)
    # speed perturbation triples what 100 h of read speech offers; SortaGrad's first epoch leaves CTC's
    # all-blank start on short utterances first
    ls_training=(trainer.max_epochs=40 augment=specaugment augment.speed_perturb=true data.sortagrad_epochs=1
                 data.max_batch_duration_s=800 optim.lr=1e-3 optim.warmup_steps=1000 trainer.keep_checkpoints=5
                 trainer.average_last=5) ;;
  960h)
    ls_train_subsets=(train-clean-100 train-clean-360 train-other-500)
    ls_tokenizer=(data.tokenizer=bpe data.vocab_size=512)
    ls_model=(model.rnn_type=lstm model.hidden_size=640 model.num_layers=5 model.dropout=0.15)
    ls_training=(trainer.max_epochs=20 augment=specaugment data.sortagrad_epochs=1 data.max_batch_duration_s=1200
                 optim.lr=1e-3 optim.warmup_steps=2000 trainer.keep_checkpoints=5 trainer.average_last=5
                 trainer.checkpoint_every_steps=2000) ;;
  *) echo "error: SIZE must be 100h or 960h, got '$size'" >&2; exit 2 ;;
esac
