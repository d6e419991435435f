"""The acoustic model (stacked recurrent layers, dense + softmax output) and the self-describing model file."""
