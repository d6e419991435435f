"""The training loop (CTC loss, schedule, checkpoints, exact resume) and data-parallel plumbing."""
