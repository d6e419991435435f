"""Recipe stage 2: the vocabulary (characters or sentencepiece pieces) and the feature normalisation
statistics of a training set.

Both are small files the training stage reads back (``vocab.json``, ``stats.pt``), so a
sweep of many models computes them once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.config.schema import ConfigError, from_dict
from asr.data.audio import AudioError, load_audio
from asr.data.dataset import collate
from asr.data.manifest import Utterance
from asr.data.tokenizer import CharTokenizer, PieceTokenizer, Tokenizer
from asr.fileio import atomic_open, atomic_torch_save, atomic_write_text
from asr.frontend.features import FeatureConfig, FeatureExtractor, accumulate_stats
from asr.models.checkpoint import ModelFileError, safe_load

log = logging.getLogger(__name__)
PIECE_MODEL_FILE = "tokenizer.model"  # the sentencepiece model asr stats writes next to vocab.json


def build_vocab(utts: Sequence[Utterance], tokenizer: str = "char", vocab_size: int = 256) -> Tokenizer:
    """The vocabulary of the transcripts of ``utts``: characters (blank first, then sorted characters),
    or a sentencepiece ``bpe`` / ``unigram`` model of ``vocab_size`` pieces trained on them.

    Raises:
        ConfigError: naming ``data.vocab_size`` when sentencepiece cannot train that many pieces.
    """
    if tokenizer == "char":
        return CharTokenizer.build(u.text for u in utts)
    try:
        return PieceTokenizer.train((u.text for u in utts), tokenizer, vocab_size)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def piece_model_path(vocab_path: str | os.PathLike) -> Path:
    """Where :func:`save_vocab` writes a sentencepiece model: ``tokenizer.model`` next to ``vocab.json``."""
    return Path(vocab_path).with_name(PIECE_MODEL_FILE)


def save_vocab(path: str | os.PathLike, tokenizer: Tokenizer) -> None:
    """Write ``vocab.json`` (atomically): a character tokenizer's symbols as a JSON list in id order; for
    pieces, ``{"tokenizer", "model", "sha256", "vocab"}`` and the sentencepiece model itself beside it
    (``tokenizer.model``, which sentencepiece's own tools read)."""
    if isinstance(tokenizer, CharTokenizer):
        atomic_write_text(path, json.dumps(tokenizer.vocab, ensure_ascii=False, indent=0) + "\n")
        return
    model = piece_model_path(path)
    with atomic_open(model, "wb") as f:
        f.write(tokenizer.model_proto)
    entry = {"tokenizer": tokenizer.kind, "model": model.name,
             "sha256": hashlib.sha256(tokenizer.model_proto).hexdigest(), "vocab": tokenizer.vocab}
    atomic_write_text(path, json.dumps(entry, ensure_ascii=False, indent=0) + "\n")


def load_vocab(path: str | os.PathLike) -> Tokenizer:
    """Read ``vocab.json`` back (and for pieces the model it names); :class:`ConfigError` naming
    ``data.vocab`` when either is missing, invalid, or they do not belong together."""
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(vocab, list):
            return CharTokenizer(vocab)
        if not isinstance(vocab, dict) or not isinstance(vocab.get("model"), str):
            raise ValueError("expected a list of characters or a tokenizer entry with 'model'")
        model = Path(path).parent / vocab["model"]
        proto = model.read_bytes()
        if hashlib.sha256(proto).hexdigest() != vocab.get("sha256"):
            raise ValueError(f"{model} is not the model it was written with (sha256 differs)")
        tokenizer = PieceTokenizer(proto, vocab.get("tokenizer"))
        if tokenizer.vocab != vocab.get("vocab"):
            raise ValueError(f"the pieces of {model} differ from those listed")
        return tokenizer
    except FileNotFoundError as err:
        raise ConfigError(f"data.vocab: {err.filename} does not exist (run the recipe's stats stage first)") from None
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise ConfigError(f"data.vocab: {path} is not a valid vocabulary file: {err}") from None


def check_tokenizer(tokenizer: Tokenizer, kind: str, vocab_size: int, where: str = "data.vocab") -> None:
    """Refuse a tokenizer (read from ``data.vocab``) other than the one ``data.tokenizer`` and
    ``data.vocab_size`` ask for, so the config a model file records says what the model uses."""
    found = tokenizer.kind if isinstance(tokenizer, PieceTokenizer) else "char"
    if found != kind:
        raise ConfigError(f"{where} holds a {found} vocabulary but data.tokenizer={kind}: set data.tokenizer={found} "
                          f"or rerun `asr stats` with data.tokenizer={kind}")
    if found != "char" and len(tokenizer) - 1 != vocab_size:
        raise ConfigError(f"{where} holds {len(tokenizer) - 1} pieces but data.vocab_size={vocab_size}: set "
                          f"data.vocab_size={len(tokenizer) - 1} or rerun `asr stats`")


def _batches(utts: Sequence[Utterance], sample_rate_hz: int, batch_size: int = 16):
    """``(wave: (B, S), wave_lens: (B,))`` batches, padded by :func:`asr.data.dataset.collate` as in
    training; unreadable files are logged and left out."""
    for start in range(0, len(utts), batch_size):
        batch = collate([_item(u, sample_rate_hz) for u in utts[start:start + batch_size]])
        for utt_id, why in batch.skipped:
            log.warning("stats: skipping %s: %s", utt_id, why)
        if batch.utt_ids:
            yield batch.waves, batch.wave_lens


def _item(u: Utterance, sample_rate_hz: int) -> dict:
    """A :func:`collate` item for the whole file (no transcript), or an error item naming why it failed."""
    try:
        samples = torch.from_numpy(load_audio(u.audio_path, sample_rate_hz))
    except AudioError as err:
        return {"utt_id": u.utt_id, "error": str(err)}
    return {"utt_id": u.utt_id, "samples": samples, "ids": [], "duration_s": u.duration_s}


def compute_stats(utts: Sequence[Utterance], config: FeatureConfig) -> dict:
    """Per-dimension mean and standard deviation of un-normalised MFCC frames over ``utts``."""
    extractor = FeatureExtractor(config)
    mean, std, frames = accumulate_stats(extractor, _batches(utts, config.sample_rate_hz))
    return {"mean": mean, "std": std, "frames": frames, "features": config.to_dict()}


def save_stats(path: str | os.PathLike, stats: dict) -> None:
    """Write the :func:`compute_stats` dict to ``stats.pt`` (atomically)."""
    atomic_torch_save(stats, path)


def load_stats(path: str | os.PathLike, config: FeatureConfig) -> dict:
    """Read ``stats.pt`` and check it was computed with the same feature settings."""
    try:
        stats = safe_load(path)
    except ModelFileError as err:
        raise ConfigError(f"data.stats: {err}") from None
    saved = from_dict(FeatureConfig, stats.get("features"), "stats.features")
    # settings after normalisation (stacking) do not change the statistics
    differ = [k for k in ("sample_rate_hz", "n_mfcc", "n_mels", "win_length_ms", "hop_length_ms", "n_fft",
                          "f_min_hz", "f_max_hz", "deltas", "cmn") if getattr(saved, k) != getattr(config, k)]
    if differ:
        what = ", ".join(f"features.{k}: {getattr(saved, k)} there, {getattr(config, k)} here" for k in differ)
        raise ConfigError(f"data.stats: {path} was computed with other feature settings ({what}); "
                          "recompute it with the recipe's stats stage")
    for key in ("mean", "std"):
        if not isinstance(stats.get(key), torch.Tensor) or stats[key].shape != (config.frame_dim,):
            raise ConfigError(f"data.stats: {path}: '{key}' must be a tensor of {config.frame_dim} values")
    return stats
