"""Which code runs a model at inference: torch on a model file (the default), or onnxruntime on an export.

Both give an object called as ``model(wave: (B, S), wave_lens: (B,))`` → ``(log_probs: (B, T, V),
lengths: (B,))`` with ``model.features.config``, so transcription and evaluation do not care which.
"""

from __future__ import annotations

import os
from pathlib import Path

from asr.models.checkpoint import ModelFileError

RUNTIMES = ("torch", "onnx")  # torch: model.pt (training's format); onnx: an `asr export` file


def _is_zip(path: Path) -> bool:
    """Whether ``path`` starts like a zip archive, which every ``torch.save`` file is."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def device_for(runtime: str, device: str) -> str:
    """onnxruntime runs on the CPU: ``device=auto`` means cpu there (an explicit GPU is refused by ``model.to``)."""
    return "cpu" if runtime == "onnx" and device == "auto" else device


def load_recognizer(path: str | os.PathLike, runtime: str = "torch", threads: int = 0):
    """``(model, tokenizer)`` for inference with ``runtime`` (one of :data:`RUNTIMES`).

    Args:
        path: a model file (``runtime="torch"``) or an ``asr export`` ``.onnx`` file (``runtime="onnx"``).
        threads: onnxruntime's intra-op threads (torch's are set process-wide by :func:`asr.runtime.setup_threads`).

    Raises:
        ModelFileError: the file is missing, unreadable, or of the other runtime's kind (the message says
            which runtime or command it needs).
    """
    path = Path(path)
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "onnx":
        if _is_zip(path):
            raise ModelFileError(f"{path}: a torch model file; runtime=onnx runs an export of it "
                                 f"(asr export model={path} out={path.with_suffix('.onnx')})")
        from asr.inference.onnx_runtime import load_onnx

        return load_onnx(path, threads)
    if path.is_file() and not _is_zip(path) and path.suffix == ".onnx":
        raise ModelFileError(f"{path}: an ONNX export; run it with runtime=onnx")
    from asr.models.checkpoint import load_model

    model, tokenizer, _ = load_model(path, map_location="cpu")
    return model, tokenizer
