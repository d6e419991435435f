"""Audio I/O, manifests, text and tokenizers, datasets and batching, augmentation, validation."""
