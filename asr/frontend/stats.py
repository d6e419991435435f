"""Recipe stage 2: the vocabulary and the feature normalisation statistics of a training set.

Both are small files the training stage reads back (``vocab.json``, ``stats.pt``), so a
sweep of many models computes them once.
"""

from __future__ import annotations

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
from asr.data.tokenizer import CharTokenizer
from asr.fileio import atomic_torch_save, atomic_write_text
from asr.frontend.features import FeatureConfig, FeatureExtractor, accumulate_stats
from asr.models.checkpoint import ModelFileError, safe_load

log = logging.getLogger(__name__)


def build_vocab(utts: Sequence[Utterance]) -> CharTokenizer:
    """The character vocabulary of the transcripts of ``utts`` (blank first, then sorted characters)."""
    return CharTokenizer.build(u.text for u in utts)


def save_vocab(path: str | os.PathLike, tokenizer: CharTokenizer) -> None:
    """Write ``vocab.json``: the tokenizer's symbols as a JSON list, in id order (atomically)."""
    atomic_write_text(path, json.dumps(tokenizer.vocab, ensure_ascii=False, indent=0) + "\n")


def load_vocab(path: str | os.PathLike) -> CharTokenizer:
    """Read ``vocab.json`` back; :class:`ConfigError` naming ``data.vocab`` when it is missing or invalid."""
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
        return CharTokenizer(vocab)
    except FileNotFoundError:
        raise ConfigError(f"data.vocab: {path} does not exist (run the recipe's stats stage first)") from None
    except (json.JSONDecodeError, ValueError, TypeError) as err:
        raise ConfigError(f"data.vocab: {path} is not a valid vocabulary file: {err}") from None


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
