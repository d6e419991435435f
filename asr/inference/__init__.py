"""Using a trained model file: evaluate on a manifest, transcribe folders, scoring and output writers."""
