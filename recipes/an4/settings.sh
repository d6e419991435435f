# The AN4 recipe's model and training settings, shared by run.sh, size_sweep.sh and ablation.sh (sourced, not run).
#
# Model: 3 x 256 bidirectional GRU, about 3.0 M parameters, 120 epochs with dropout 0.1, SpecAugment, speed
# perturbation, noise and volume (augment=full) and the recording chain (an4_chain, from epoch 8): 85 minutes on
# one core of an AVX-512 host (the other core busy); AN4 test 7.76 % greedy / 5.56 % with the lexicon + 3-gram as
# recorded, 7.6 % at 8 kHz, 14.4 % through a telephone line, 22 % under babble, 21 % in a 0.6 s room, 71 / 51 %
# on other speakers' digit strings, where the same model without the chain is at 6.9 % clean and
# 74 / 88 / 101 / 60 / 115 % (recipes/an4/RESULTS.md). The size sweep
# (docs/model-and-decoding.md, "Choosing size and depth") picked the size: GRUs beat LSTMs of the same width on
# AN4, and depth stopped helping at 3 layers. size_sweep.sh and ablation.sh start from the settings without
# an4_chain and an4_extra.
# Front-end settings beyond conf/features/mfcc40.yaml: the statistics stage uses them too.
an4_features=()
# edge_pad_s: at inference every utterance is heard with 0.3 s of quiet background at both ends, so audio
# trimmed to the speech keeps its first and last words (test, greedy: trimmed 17.1 % -> 8.4 %, clean 7.1 -> 6.9 %;
# recipes/an4/RESULTS.md, "Trimmed audio")
an4_model=(model.rnn_type=gru model.hidden_size=256 model.num_layers=3 model.edge_pad_s=0.3)
# Keep batches at 60 s: with 30 s ones the network was still in CTC's all-blank start at epoch 13
# (docs/model-and-decoding.md, "Augmentation").
# 100 epochs, not 70: with the chain the 70-epoch run was still improving at its last epoch (best 69 of 70), and
# 30 more took clean test from 9.83 to 8.02 % greedy (recipes/an4/RESULTS.md)
an4_training=(model.dropout=0.2 augment=full trainer.max_epochs=100 data.max_batch_duration_s=60)
# run.sh only, on top of an4_training (the sweeps keep the settings their tables were measured with): dropout
# 0.1 and 120 epochs. With the chain the network is underfit rather than overfit: against dropout 0.2 and 100
# epochs, clean 8.02 -> 7.76 % greedy, 8 kHz 10.5 -> 7.6 %, babble 28 -> 22 %, the 0.6 s room 23 -> 21 %
# (recipes/an4/RESULTS.md)
an4_schedule=(model.dropout=0.1 trainer.max_epochs=120)
# The recording chain (docs/model-and-decoding.md, "Augmentation"): rooms, trimmed and padded silences, babble of
# other training speakers, microphone tilt, 8 kHz band limit and telephone codecs; off for the first 8 epochs, so
# the network leaves CTC's all-blank start on near-clean audio. Babble 0.25 (0.15 before: 41 % under babble at 10 dB)
an4_chain=(augment.reverb=true augment.reverb_prob=0.2 augment.silence_prob=0.3 augment.babble_prob=0.25
           augment.tilt_prob=0.3 augment.bandlimit_prob=0.15 augment.codec_prob=0.15 "augment.codecs=[ulaw,alaw,gsm,mp3]"
           augment.chain_from_epoch=8)
# Extra training corpora, NAME=WEIGHT (the share of that corpus drawn each epoch; run.sh --extra replaces it)
an4_extra=()
