# The AN4 recipe's model and training settings, shared by run.sh and size_sweep.sh (sourced, not run).
#
# Model: 3 x 256 bidirectional GRU, about 3.0 M parameters; 70 epochs with all four augmentations
# (augment=full) took 80 minutes on 2 cores (dev WER 8.72 %, test 7.50 % greedy, 4.53 % with the
# lexicon). The size sweep (README, "Choosing the model size") picked the model, with SpecAugment +
# speed perturbation (augment=specaugment augment.speed_perturb=true, the earlier default): GRUs beat
# LSTMs of the same width on AN4, and depth stopped helping at 3 layers. Noise and volume on top of
# those kept clean test WER and held it under noise (README, "Away from the training microphone").
# model.rnn_type=lstm model.num_layers=4 is the earlier 4 x 256 BiLSTM (dev 9.57 %, test 7.63 %).
# Front-end settings beyond conf/features/mfcc40.yaml: the statistics stage uses them too.
an4_features=()
an4_model=(model.rnn_type=gru model.hidden_size=256 model.num_layers=3)
# Keep batches at 60 s: with 30 s ones the network was still in CTC's all-blank start at epoch 13
# (README, Augmentation).
an4_training=(model.dropout=0.2 augment=full trainer.max_epochs=70 data.max_batch_duration_s=60)
