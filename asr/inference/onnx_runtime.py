"""Run an exported recognizer (``asr export``) with onnxruntime, as a drop-in for the torch model.

:class:`OnnxRecognizer` is called like :class:`asr.models.acoustic.Recognizer`
(``(wave: (B, S), wave_lens: (B,))`` → ``(log_probs: (B, T, V), lengths: (B,))``, torch tensors)
and carries ``features.config``, so :func:`asr.inference.evaluate.evaluate` uses it unchanged;
:meth:`OnnxRecognizer.run` is the same on numpy arrays. This module imports no torch, so
``asr transcribe runtime=onnx`` (:func:`asr.inference.transcribe.transcribe`) starts without loading it.
Its settings come from the file's ``metadata_props``, which are read as data and validated (types,
ranges, the vocabulary, the output size), never executed.

Example:
    >>> model, tokenizer = load_onnx("exp/an4/model.onnx", threads=2)  # doctest: +SKIP
    >>> log_probs, lengths = model(wave, wave_lens)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.config.schema import ConfigError, from_dict
from asr.data.tokenizer import CharTokenizer, PieceTokenizer, Tokenizer, verified_piece_tokenizer
from asr.fileio import file_sha256
from asr.frontend.config import FeatureConfig
from asr.inference.backends import model_file_error

ONNX_FORMAT = "asr-onnx"  # what asr.inference.export writes into metadata_props, and the one format read back
ONNX_FORMAT_VERSION = 1
REQUIRED_KEYS = ("asr_format", "asr_format_version", "vocab", "features", "min_samples")


@dataclass(frozen=True)
class OnnxFrontEnd:
    """What callers read from a recognizer's front end: its settings (``model.features.config``)."""

    config: FeatureConfig


def read_metadata(meta: dict[str, str], where: str) -> tuple[FeatureConfig, Tokenizer, dict]:
    """Validate an export's ``metadata_props``; return its feature settings, tokenizer and model settings.

    The tokenizer is characters from ``vocab``, or, with a ``tokenizer`` key, the sentencepiece model it
    carries (checked against its SHA-256 and against ``vocab``).

    Raises:
        ModelFileError: a key is missing, malformed or out of range (the message names the file and key).
    """
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise model_file_error(f"{where}: not an asr ONNX export (metadata_props lacks {', '.join(missing)}; "
                                "export a model file with asr export)")
    if meta["asr_format"] != ONNX_FORMAT or meta["asr_format_version"] != str(ONNX_FORMAT_VERSION):
        raise model_file_error(f"{where}: metadata asr_format {meta['asr_format']!r} version "
                                f"{meta['asr_format_version']!r} is not supported (this asr reads {ONNX_FORMAT} "
                                f"version {ONNX_FORMAT_VERSION})")
    parsed = {}
    for key in ("vocab", "features", "model"):
        try:
            parsed[key] = json.loads(meta.get(key, "{}"))
        except ValueError as err:
            raise model_file_error(f"{where}: metadata {key} is not valid JSON ({err})") from None
    try:
        features = from_dict(FeatureConfig, parsed["features"], "features")  # as a model file's settings are read
        vocab = parsed["vocab"] if isinstance(parsed["vocab"], list) else []
        tokenizer = subword_tokenizer(meta["tokenizer"], vocab) if "tokenizer" in meta else CharTokenizer(vocab)
        min_samples = int(meta["min_samples"])
    except (ConfigError, ValueError, TypeError) as err:
        raise model_file_error(f"{where}: invalid settings in metadata_props: {err}") from None
    if min_samples != features.fft_length:
        raise model_file_error(f"{where}: metadata min_samples={min_samples} does not match the feature settings' "
                                f"frame length ({features.fft_length} samples)")
    return features, tokenizer, parsed["model"] if isinstance(parsed["model"], dict) else {}


def subword_tokenizer(value: str, vocab: list) -> PieceTokenizer:
    """The sentencepiece tokenizer of a ``tokenizer`` metadata value (``asr.inference.export.subword_metadata``).

    Raises:
        ValueError: the value is malformed, the bytes are damaged (SHA-256) or spell another vocabulary.
    """
    try:
        entry = json.loads(value)
        proto = base64.b64decode(entry["model_base64"], validate=True)
        kind, digest = entry["kind"], entry["sha256"]
    except (ValueError, TypeError, KeyError) as err:  # binascii.Error is a ValueError
        raise ValueError(f"metadata tokenizer is not JSON with kind, sha256 and model_base64 ({err})") from None
    return verified_piece_tokenizer(proto, kind, digest, vocab, vocab_name="the metadata vocab")


def session_options(threads: int):
    """onnxruntime options: ``threads`` intra-op threads (0: onnxruntime's choice), one inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(0, threads)
    opts.inter_op_num_threads = 1  # the graph is one chain of layers: nothing to run side by side
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OnnxRecognizer:
    """An ``asr export`` file in onnxruntime, called like the torch :class:`Recognizer` (CPU only).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op CPU threads (0: onnxruntime's default, every core).
    """

    training = False  # inference only; evaluate() switches models to eval mode and back

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        import onnxruntime as ort

        self.path = Path(path)
        self.threads = threads  # asr.inference.transcribe.default_workers counts them beside its decoding process
        if not self.path.is_file():
            raise model_file_error(f"{self.path}: model file not found")
        try:
            self.session = ort.InferenceSession(str(self.path), session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types for every unreadable file
            reason = str(err).splitlines()[0][:200]
            raise model_file_error(f"{self.path}: not a loadable ONNX file ({reason})") from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        config, self.tokenizer, self.settings = read_metadata(meta, str(self.path))
        self.features = OnnxFrontEnd(config)
        self.metadata = meta
        self._check_io()

    def _check_io(self) -> None:
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if names != (["wave", "wave_lens"], ["log_probs", "lengths"]):
            raise model_file_error(f"{self.path}: inputs/outputs {names} are not an asr export's "
                                    "(wave, wave_lens -> log_probs, lengths)")
        vocab_dim = self.session.get_outputs()[0].shape[-1]
        if isinstance(vocab_dim, int) and vocab_dim != len(self.tokenizer):
            raise model_file_error(f"{self.path}: the graph outputs {vocab_dim} classes, its metadata vocab has "
                                    f"{len(self.tokenizer)}")

    def run(self, wave: np.ndarray, wave_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``wave: (B, S)`` float, ``wave_lens: (B,)`` → ``log_probs: (B, T, V)`` float32, ``lengths: (B,)`` int64
        (numpy arrays in and out)."""
        wave = np.asarray(wave, dtype=np.float32)
        short = self.features.config.fft_length - wave.shape[-1]
        if short > 0:  # the graph needs one whole frame; zero padding changes no output (exact batching)
            wave = np.pad(wave, ((0, 0), (0, short)))
        log_probs, lengths = self.session.run(None, {"wave": np.ascontiguousarray(wave),
                                                     "wave_lens": np.asarray(wave_lens, dtype=np.int64)})
        return log_probs, lengths

    def __call__(self, wave, wave_lens):
        """:meth:`run` on torch tensors: ``wave: (B, S)``, ``wave_lens: (B,)`` → CPU tensors, as the torch model."""
        import torch  # the caller holds tensors, so torch is loaded already

        log_probs, lengths = self.run(wave.detach().to("cpu", torch.float32).numpy(),
                                      wave_lens.detach().cpu().long().numpy())
        return torch.from_numpy(log_probs), torch.from_numpy(lengths)

    @property
    def time_offset_s(self) -> float:
        """Time of output frame 0 relative to the audio: ``-edge_pad_s`` (as the torch Recognizer)."""
        pad = self.settings.get("edge_pad_s", 0.0)
        if not isinstance(pad, (int, float)) or not 0 <= pad <= 5:
            raise model_file_error(f"{self.path}: metadata model.edge_pad_s={pad!r} must be a number in [0, 5]")
        shift = self.features.config.output_frame_shift_s
        return -round(pad / shift) * shift

    # the parts of nn.Module's interface that inference code calls
    def eval(self) -> OnnxRecognizer:
        return self

    def train(self, mode: bool = True) -> OnnxRecognizer:
        if mode:
            raise RuntimeError(f"{self.path}: an ONNX export cannot be trained")
        return self

    def to(self, device) -> OnnxRecognizer:
        if str(device).split(":")[0] != "cpu":  # a str or a torch.device
            raise RuntimeError(f"runtime=onnx runs on the CPU (onnxruntime's CPU provider); device={device} "
                               "is not available with it")
        return self

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes: what transcription provenance records for this model."""
        return file_sha256(self.path)


def load_onnx(path: str | os.PathLike, threads: int = 0) -> tuple[OnnxRecognizer, Tokenizer]:
    """An :class:`OnnxRecognizer` and its tokenizer (from the file's metadata)."""
    model = OnnxRecognizer(path, threads)
    return model, model.tokenizer
