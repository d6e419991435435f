"""The training data: manifests read and filtered, the vocabulary, and a duration-bucketed loader per rank."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from asr.config.schema import ConfigError, Settings
from asr.data.dataset import (
    DurationBatchSampler,
    SpeechDataset,
    collate,
    ctc_min_frames,
    filter_utterances,
    total_hours,
)
from asr.data.manifest import Utterance, manifest_files, read_manifests
from asr.data.tokenizer import Tokenizer
from asr.fileio import drop_inherited_locks
from asr.frontend.features import output_frames_for_duration
from asr.frontend.stats import build_vocab, check_tokenizer, load_vocab
from asr.training import distributed

log = logging.getLogger(__name__)


@dataclass
class TrainData:
    """What the loop trains and scores on; ``loader`` yields this rank's :class:`asr.data.dataset.Batch` es."""

    train_utts: list[Utterance]  # the usable training utterances this rank reads
    dev_utts: list[Utterance]  # every dev set's utterances, in order: the best epoch is chosen on all of them
    tokenizer: Tokenizer
    sampler: DurationBatchSampler  # this rank's batches of each epoch; its state is checkpointed
    loader: torch.utils.data.DataLoader
    dev_sets: list[tuple[str, list[Utterance]]] = ()  # (data.dev_manifest entry, its utterances) when a list


def _entries(manifests) -> list:
    return list(manifests) if isinstance(manifests, (list, tuple)) else [manifests]


def load_training_data(s: Settings, world: distributed.World, device: torch.device) -> TrainData:
    """Read, check and filter the manifests of ``s.data`` and build this rank's loader."""
    train_files = train_files_for_rank(s, world)
    if s.data.validate:
        validate_data(s, train_files)
    if s.data.train_weights:  # one weight per entry: remember which entry each utterance came from
        parts = [read_manifests(e) for e in _entries(s.data.train_manifest)]
        train_utts = [u for part in parts for u in part]
        corpus_of = {id(u): k for k, part in enumerate(parts) for u in part}
    else:
        train_utts = read_manifests(train_files)
    dev_sets = [(str(e), read_manifests(e)) for e in _entries(s.data.dev_manifest)] if s.data.dev_manifest else []
    dev_utts = [u for _, part in dev_sets for u in part]
    tokenizer = training_tokenizer(s, train_utts)
    frames = lambda d: output_frames_for_duration(s.features, d)  # noqa: E731
    train_utts = filter_utterances(train_utts, tokenizer, frames, min_duration_s=s.data.min_duration_s,
                                   max_duration_s=s.data.max_duration_s, split="train")
    if not train_utts:
        raise ConfigError(f"data.train_manifest: no usable utterances in {s.data.train_manifest}")
    log.info("train: %d utterances, %.2f h; dev: %d utterances; vocabulary %d symbols",
             len(train_utts), total_hours(train_utts), len(dev_utts), len(tokenizer))
    weights = None
    if s.data.train_weights:
        corpus = [corpus_of[id(u)] for u in train_utts]
        weights = [s.data.train_weights[k] for k in corpus]
        _log_weights(s, train_utts, corpus)
    sampler, loader = _loader(s, world, device, train_utts, tokenizer, weights)
    return TrainData(train_utts, dev_utts, tokenizer, sampler, loader, dev_sets if len(dev_sets) > 1 else [])


def training_tokenizer(s: Settings, train_utts: list[Utterance]) -> Tokenizer:
    """``data.vocab`` read back and checked against ``data.tokenizer`` / ``data.vocab_size``, or, without
    it, the vocabulary those settings ask for built from the training text."""
    if not s.data.vocab:
        return build_vocab(train_utts, s.data.tokenizer, s.data.vocab_size)
    tokenizer = load_vocab(s.data.vocab)
    check_tokenizer(tokenizer, s.data.tokenizer, s.data.vocab_size, f"data.vocab ({s.data.vocab})")
    return tokenizer


def _log_weights(s: Settings, utts: list[Utterance], corpus: list[int]) -> None:
    """One line per weighted corpus: its usable hours and what an epoch draws of it."""
    for k, (w, entry) in enumerate(zip(s.data.train_weights, _entries(s.data.train_manifest))):
        mine = [u for u, c in zip(utts, corpus) if c == k]
        log.info("train corpus %s: weight %g, %d usable utterances, %.2f h -> %.2f h per epoch", entry, w,
                 len(mine), total_hours(mine), w * total_hours(mine))


def _loader(s: Settings, world: distributed.World, device: torch.device, train_utts: list[Utterance],
            tokenizer: Tokenizer, weights: list[float] | None = None
            ) -> tuple[DurationBatchSampler, torch.utils.data.DataLoader]:
    sr = s.features.sample_rate_hz
    # an utterance whose targets no longer fit its frames after speed perturbation is left out of that epoch
    feasible = lambda n, ids: output_frames_for_duration(s.features, n / sr) >= ctc_min_frames(ids)  # noqa: E731
    dataset = SpeechDataset(train_utts, tokenizer, sr, augment=s.augment.wave_augment(sr), seed=s.trainer.seed,
                            feasible=feasible)
    if s.data.preload:
        t0 = time.perf_counter()
        for utt_id, reason in dataset.preload():
            log.warning("train: utterance %s cannot be read and is left out: %s", utt_id, reason)
        log.info("preloaded training audio in %.1f s", time.perf_counter() - t0)
    # with per-rank shards each rank batches its own data; otherwise ranks split one shared plan
    split = world if not s.data.rank_shards else distributed.World()
    sampler = DurationBatchSampler([u.duration_s for u in train_utts], s.data.max_batch_duration_s,
                                   seed=s.trainer.seed, sort_jitter=s.data.sort_jitter,
                                   sortagrad_epochs=s.data.sortagrad_epochs, rank=split.rank, world_size=split.size,
                                   tag_epoch=dataset.augment is not None, weights=weights)
    equal_work(sampler, 0, s.data.rank_shards)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=s.data.num_workers, pin_memory=device.type == "cuda",
                                         persistent_workers=s.data.num_workers > 0, worker_init_fn=drop_inherited_locks,
                                         # its own generator: starting an epoch's iterator must not draw from
                                         # the global RNG, or SpecAugment's masks shift after a mid-epoch resume
                                         generator=torch.Generator().manual_seed(s.trainer.seed))
    return sampler, loader


def train_files_for_rank(s: Settings, world: distributed.World) -> list:
    """The train manifests this rank reads: all of them, or with ``data.rank_shards`` its own ``files[rank::size]``."""
    files = manifest_files(s.data.train_manifest)
    if not s.data.rank_shards or world.size == 1:
        return files
    if len(files) < world.size:
        raise ConfigError(f"data.rank_shards: {len(files)} train manifest(s) cannot give each of {world.size} "
                          "ranks its own; split the corpus into more shards or set data.rank_shards=false")
    if not (s.data.vocab and s.data.stats):
        raise ConfigError("data.rank_shards: each rank reads only its own shards, so the vocabulary and "
                          "statistics must come from all of them: set data.vocab and data.stats (asr-stats)")
    mine = files[world.rank::world.size]
    log.info("rank %d reads %d of %d train manifests", world.rank, len(mine), len(files))
    return mine


def validate_data(s: Settings, train_files: list) -> None:
    """Refuse to start on fatal manifest problems (:mod:`asr.data.validate`); headers only, no decoding.

    ``train_files`` are the train manifests this rank reads (all of them, or its own shards).
    """
    from asr.data.validate import require_valid

    vocab = load_vocab(s.data.vocab) if s.data.vocab else None
    if vocab is not None:
        check_tokenizer(vocab, s.data.tokenizer, s.data.vocab_size, f"data.vocab ({s.data.vocab})")
    dev_files = manifest_files(s.data.dev_manifest) if s.data.dev_manifest else []
    for key, files in (("train_manifest", train_files), ("dev_manifest", dev_files)):
        for manifest in files:
            require_valid(str(manifest), f"data.{key}", features=s.features, tokenizer=vocab)


def equal_work(sampler: DurationBatchSampler, epoch: int, per_rank_data: bool) -> None:
    """With per-rank data, cap every rank's epoch at the shortest rank's plan, so no rank waits at the end."""
    if per_rank_data:
        sampler.set_epoch(epoch)
        sampler.max_batches = int(distributed.all_reduce([sampler.plan_length()], op="min")[0])
