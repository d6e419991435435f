"""Waveform to model input: MFCC, normalisation statistics, frame stacking, SpecAugment."""
