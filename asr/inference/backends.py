"""Which code runs a model at inference: torch on a model file (the default), torch with int8 weights, or
onnxruntime on an ``asr export`` file.

Each gives an object called as ``model(wave: (B, S), wave_lens: (B,))`` → ``(log_probs: (B, T, V),
lengths: (B,))`` with ``model.features.config``, so transcription and evaluation do not care which.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from asr.config.commands import RUNTIMES

__all__ = ["RUNTIMES", "device_for", "load_recognizer", "model_fingerprint", "quantize_torch"]


def model_file_error(message: str) -> Exception:
    """:class:`asr.models.checkpoint.ModelFileError` with ``message``, its module imported only now.

    That module imports torch; the ONNX runtime raises through this, so that it loads torch only
    on its way to reporting a bad file, never on a good one.
    """
    from asr.models.checkpoint import ModelFileError

    return ModelFileError(message)


def _is_zip(path: Path) -> bool:
    """Whether ``path`` starts like a zip archive, which every ``torch.save`` file is."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def device_for(runtime: str, device: str) -> str:
    """onnxruntime runs on the CPU: ``device=auto`` means cpu there (an explicit GPU is refused by ``model.to``)."""
    return "cpu" if runtime != "torch" and device == "auto" else device


def load_recognizer(path: str | os.PathLike, runtime: str = "torch", threads: int = 0):
    """``(model, tokenizer)`` for inference with ``runtime`` (one of :data:`RUNTIMES`).

    Args:
        path: a model file (``runtime="torch"`` or ``"torch-int8"``) or an ``asr export`` ``.onnx`` file
            (``runtime="onnx"``).
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
            raise model_file_error(f"{path}: a torch model file; runtime=onnx runs an export of it "
                                    f"(asr export model={path} out={path.with_suffix('.onnx')})")
        from asr.inference.onnx_runtime import load_onnx

        return load_onnx(path, threads)
    if path.is_file() and not _is_zip(path) and path.suffix == ".onnx":
        raise model_file_error(f"{path}: an ONNX export; run it with runtime=onnx")
    from asr.models.checkpoint import load_model

    model, tokenizer, _ = load_model(path, map_location="cpu")
    return (model if runtime == "torch" else quantize_torch(model)), tokenizer


def quantize_torch(model):
    """``model`` with torch's dynamic int8 GRU/LSTM and dense layers (weights int8, activations quantized per call).

    Activations get one scale per call over the whole batch, so unlike the float model an
    utterance's posteriors depend slightly on what it is batched with. The result keeps the float
    model's fingerprint (with an ``int8`` mark) for transcription provenance: its packed weights
    are not tensors.
    """
    import torch
    from torch import nn

    digest = hashlib.sha256(f"{model_fingerprint(model)}:torch-int8".encode()).hexdigest()
    quantized = torch.ao.quantization.quantize_dynamic(model, {nn.GRU, nn.LSTM, nn.Linear}, dtype=torch.qint8)
    quantized.fingerprint = lambda: digest
    return quantized.eval()


def model_fingerprint(model) -> str:
    """SHA-256 of a torch model's state dict (names, dtypes, shapes, values), or the model's own ``fingerprint()``
    (an ONNX export's file bytes, a quantized model's float weights)."""
    if hasattr(model, "fingerprint"):
        return model.fingerprint()
    import torch

    weights = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        weights.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        weights.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return weights.hexdigest()
