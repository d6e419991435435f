"""Looking inside runs and models: inspection figures, LSTM gates, training curves, sweep and evaluation tables.

Nothing in training or inference imports this package (plotting stays out of the hot paths)."""
