"""asr: a readable, fast BiLSTM-CTC speech recognition toolkit.

The Python API (:mod:`asr.api`) is imported on first use, so ``import asr`` (and every command's
start-up) stays light::

    from asr import Recognizer
    transcripts = Recognizer.load("model.pt").transcribe(["a.wav"])

Versioning: semantic versioning from 0.2.0 on, covering the names in ``__all__``, the model file
and ONNX export formats, and the commands' settings (see CHANGELOG.md).
"""

__version__ = "0.2.0"
__all__ = ["Recognizer", "Transcript", "Word", "__version__"]


def __getattr__(name: str):
    if name in ("Recognizer", "Transcript", "Word"):
        from asr import api

        return getattr(api, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
