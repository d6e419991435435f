# The AN4 recipe's model and training settings, shared by run.sh and size_sweep.sh (sourced, not run).
#
# Model: 3 x 256 bidirectional GRU, about 3.0 M parameters, 70 epochs with SpecAugment, speed
# perturbation, noise and volume (augment=full): 80 minutes on 2 AVX2 cores, test 7.50 % greedy and
# 4.53 % with the lexicon (recipes/an4/RESULTS.md). The size sweep (docs/model-and-decoding.md,
# "Choosing size and depth") picked it: GRUs beat LSTMs of the same width on AN4, and depth stopped
# helping at 3 layers. Noise and volume keep clean test WER and hold it under noise (RESULTS.md,
# "Away from the training microphone"). model.rnn_type=lstm model.num_layers=4 is a 4 x 256 BiLSTM
# (dev 9.57 %, test 7.63 %).
# Front-end settings beyond conf/features/mfcc40.yaml: the statistics stage uses them too.
an4_features=()
# edge_pad_s: at inference every utterance is heard with 0.3 s of quiet background at both ends, so audio
# trimmed to the speech keeps its first and last words (test, greedy: trimmed 17.1 % -> 8.4 %, clean 7.1 -> 6.9 %;
# recipes/an4/RESULTS.md, "Trimmed audio")
an4_model=(model.rnn_type=gru model.hidden_size=256 model.num_layers=3 model.edge_pad_s=0.3)
# Keep batches at 60 s: with 30 s ones the network was still in CTC's all-blank start at epoch 13
# (docs/model-and-decoding.md, "Augmentation").
an4_training=(model.dropout=0.2 augment=full trainer.max_epochs=70 data.max_batch_duration_s=60)
