# The AN4 recipe's model and training settings, shared by run.sh and size_sweep.sh (sourced, not run).
#
# Model: 3 x 256 bidirectional GRU, about 3.0 M parameters; 70 epochs with SpecAugment + speed
# perturbation took 79 minutes on 2 cores (dev WER 7.87 %, test 7.63 % greedy). The size sweep
# (README, "Choosing the model size") picked it: GRUs beat LSTMs of the same width on AN4, and depth
# stopped helping at 3 layers. model.rnn_type=lstm model.num_layers=4 is the earlier 4 x 256 BiLSTM
# (dev 9.57 %, test 7.63 %).
an4_model=(model.rnn_type=gru model.hidden_size=256 model.num_layers=3)
# Keep batches at 60 s: with 30 s ones the network was still in CTC's all-blank start at epoch 13
# (README, Augmentation).
an4_training=(model.dropout=0.2 augment.speed_perturb=true trainer.max_epochs=70 data.max_batch_duration_s=60)
