"""Datasets, duration-bucketed batching and collation.

The batch sampler is built for DDP and exact resume from the start: every rank derives
the same epoch plan of *global* batches from ``(seed, epoch)`` and takes every
``world_size``-th utterance of each, so one optimizer step under DDP sees the same
utterances as one step of a single process, and every rank steps the same number of
times (no hang at epoch end). Its position inside an epoch is part of its ``state_dict``,
so a run resumed mid-epoch continues with exactly the batches it had not yet seen.

``max_batch_duration_s`` is what one process's batch holds: under DDP the global batches
are planned with ``world_size × max_batch_duration_s`` and dealt out, so N ranks at
``C / N`` train on exactly the batches, in the same order, of a single process at ``C``.
A rank's share may then hold one utterance more than its cap alone would allow (its
padded audio stays below ``max_batch_duration_s + max_duration_s``).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from asr.data.audio import AudioError, load_audio
from asr.data.augment import WaveAugment, utterance_rng
from asr.data.batching import make_batches  # also this module's name for it (callers import it from here)
from asr.data.manifest import Utterance
from asr.data.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def ctc_min_frames(token_ids: Sequence[int]) -> int:
    """Frames CTC needs for a target: one per token, plus a blank between each repeated pair."""
    repeats = sum(1 for a, b in zip(token_ids, token_ids[1:]) if a == b)
    return len(token_ids) + repeats


class DurationBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Duration-bucketed batches; DDP-aware; resumable mid-epoch.

    Args:
        durations: seconds per utterance (dataset order).
        max_batch_duration_s: cap on the padded audio of the batch this process gets.
        rank, world_size: every rank plans the same global batches, capped at
            ``world_size × max_batch_duration_s``, and takes every ``world_size``-th
            utterance of each, so a DDP step sees what a single process's step at
            ``world_size`` times the cap sees. A global batch too small to give every rank
            an utterance (only the plan's longest batch can be) waits for a later epoch.
        seed, shuffle, sort_jitter: see :func:`make_batches`.
        sortagrad_epochs: the first this many epochs go shortest batch first, unshuffled
            (SortaGrad, DeepSpeech 2): short utterances first help CTC leave its all-blank start.
        tag_epoch: yield ``(index, epoch)`` pairs instead of indices, for a dataset that
            augments each utterance with a random stream seeded by the epoch (``(index, epoch, copy)``
            for the second and later copies of an utterance weighted above 1).
        weights: per-utterance sampling weights (corpus weights, ``data.train_weights``): each epoch an
            utterance appears ``floor(w)`` times plus once more with probability ``w - floor(w)``,
            drawn from ``(seed, epoch)`` like the batch plan, so every rank and a resumed run draw
            the same. None: every utterance once.

    Call :meth:`set_epoch` before each epoch (as with ``DistributedSampler``). When each
    rank batches data of its own (sharded manifests), the ranks' plans differ in length:
    set :attr:`max_batches` to their minimum (:meth:`plan_length` on every rank, reduced)
    so that every rank steps the same number of times.

    Example:
        >>> s = DurationBatchSampler([1.0, 2.0, 1.5, 0.5], 3.0, rank=1, world_size=2)
        >>> s.set_epoch(0); [len(b) for b in s]
        [1]
    """

    def __init__(self, durations: Sequence[float], max_batch_duration_s: float, *, seed: int = 0,
                 shuffle: bool = True, sort_jitter: float = 0.0, sortagrad_epochs: int = 0, rank: int = 0,
                 world_size: int = 1, tag_epoch: bool = False, weights: Sequence[float] | None = None):
        self.durations = list(durations)
        if weights is not None and (len(weights) != len(self.durations) or min(weights, default=1) <= 0):
            raise ValueError(f"weights: need one positive weight per utterance ({len(self.durations)}), "
                             f"got {len(weights)}")
        self.weights = None if weights is None else list(weights)
        self.tag_epoch = tag_epoch
        self.max_batch_duration_s = max_batch_duration_s
        self.seed, self.shuffle, self.sort_jitter = seed, shuffle, sort_jitter
        self.sortagrad_epochs = sortagrad_epochs
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.start_batch = 0  # batches of this epoch already consumed (for resume)
        self.max_batches: int | None = None  # cap on this epoch's batches (equal work with per-rank data)

    def set_epoch(self, epoch: int) -> None:
        """Plan batches for ``epoch``; a new epoch starts at its first batch, the current one where it stopped."""
        if epoch != self.epoch:
            self.start_batch = 0
        self.epoch = epoch

    def _items(self) -> list[tuple[int, int]]:
        """This epoch's ``(utterance, copy)`` pairs: each utterance once, or as many times as its weight draws."""
        if self.weights is None:
            return [(i, 0) for i in range(len(self.durations))]
        rng = random.Random(f"weights-{self.seed}-{self.epoch}")  # a str seed hashes the same in every process
        items = []
        for i, w in enumerate(self.weights):
            copies = int(w) + (rng.random() < w - int(w))
            items += [(i, c) for c in range(copies)]
        return items

    def _plan(self) -> list[list[tuple[int, int]]]:
        w = self.world_size
        items = self._items()
        batches = make_batches([self.durations[i] for i, _ in items], self.max_batch_duration_s * w, seed=self.seed,
                               epoch=self.epoch, shuffle=self.shuffle and self.epoch >= self.sortagrad_epochs,
                               sort_jitter=self.sort_jitter)
        batches = [[items[j] for j in b] for b in batches]
        if w > 1:
            # equal work: every rank takes a share of every global batch, so all step together
            batches = [b[self.rank::w] for b in batches if len(b) >= w]
            if not batches:
                raise ValueError(f"{len(self.durations)} utterances cannot be shared by {w} processes")
        return batches if self.max_batches is None else batches[:self.max_batches]

    def plan_length(self) -> int:
        """Batches this epoch's plan holds before the :attr:`max_batches` cap."""
        cap, self.max_batches = self.max_batches, None
        try:
            return len(self._plan())
        finally:
            self.max_batches = cap

    def __iter__(self) -> Iterator[list[int]]:
        plan = self._plan()
        for i in range(self.start_batch, len(plan)):
            self.start_batch = i + 1
            if self.tag_epoch:
                yield [(k, self.epoch) if c == 0 else (k, self.epoch, c) for k, c in plan[i]]
            else:
                yield [k for k, _ in plan[i]]
        self.start_batch = 0

    def __len__(self) -> int:
        return len(self._plan())

    def state_dict(self) -> dict:
        """``{"epoch", "start_batch"}``: enough to continue with the batches not yet yielded."""
        return {"epoch": self.epoch, "start_batch": self.start_batch}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; the next iteration resumes at its ``start_batch``."""
        self.epoch, self.start_batch = int(state["epoch"]), int(state["start_batch"])


@dataclass
class Batch:
    """A padded batch. ``waves: (B, S)`` float32, ``wave_lens: (B,)``, ``targets: (B, L)``."""

    waves: torch.Tensor
    wave_lens: torch.Tensor
    targets: torch.Tensor
    target_lens: torch.Tensor
    utt_ids: list[str]
    durations_s: list[float]
    skipped: list[tuple[str, str]]  # (utterance id, reason) of items that failed to load

    def to(self, device: torch.device) -> Batch:
        """The batch's tensors on ``device`` (non-blocking copies to a GPU); ids and durations stay as they are."""
        nb = device.type == "cuda"
        return Batch(self.waves.to(device, non_blocking=nb), self.wave_lens.to(device, non_blocking=nb),
                     self.targets.to(device, non_blocking=nb), self.target_lens.to(device, non_blocking=nb),
                     self.utt_ids, self.durations_s, self.skipped)

    def split(self, pieces: int) -> list[Batch]:
        """``pieces`` consecutive sub-batches, each trimmed to its own padding (for out-of-memory retries)."""
        n = len(self.utt_ids)
        if pieces <= 1 or n <= 1:
            return [self]
        bounds = [round(i * n / pieces) for i in range(pieces + 1)]
        parts = []
        for a, b in zip(bounds, bounds[1:]):
            if a < b:
                wl, tl = self.wave_lens[a:b], self.target_lens[a:b]
                parts.append(Batch(self.waves[a:b, : int(wl.max())], wl, self.targets[a:b, : int(tl.max())], tl,
                                   self.utt_ids[a:b], self.durations_s[a:b], []))
        return parts

    @property
    def audio_seconds(self) -> float:
        """Seconds of real (unpadded) audio in the batch."""
        return float(sum(self.durations_s))


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances → ``(samples, token_ids)``, decoding audio on demand or from a preloaded cache.

    A file that fails to load yields an error item (reported in the batch's ``skipped``)
    instead of crashing the epoch.

    Waveform augmentation (training only): with ``augment``, an item requested as
    ``dataset[(index, epoch)]`` (see ``DurationBatchSampler(tag_epoch=True)``) is augmented
    with the random stream of ``(seed, epoch, index)``; ``dataset[index]`` never is.
    ``feasible(num_samples, ids)`` says whether CTC can still align the augmented audio;
    when a faster speed makes it too short, the utterance keeps its original speed.
    """

    def __init__(self, utts: Sequence[Utterance], tokenizer: Tokenizer | None, sample_rate_hz: int, *,
                 augment: WaveAugment | None = None, seed: int = 0,
                 feasible: Callable[[int, list[int]], bool] | None = None):
        self.utts = list(utts)
        self.tokenizer = tokenizer
        self.sample_rate_hz = sample_rate_hz
        self.augment = augment if augment is not None and augment.active else None
        self.seed = seed
        self.feasible = feasible
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.utts)

    def load(self, i: int) -> np.ndarray:
        """Utterance ``i``'s samples: ``(num_samples,)`` float32 at ``sample_rate_hz`` (its segment only when it
        has an offset). Raises :class:`AudioError` when the file cannot be used."""
        cached = self._cache.get(i)
        if cached is not None:
            return cached.astype(np.float32) / 32768.0
        u = self.utts[i]
        dur = u.duration_s if u.offset_s else None
        return load_audio(u.audio_path, self.sample_rate_hz, offset_s=u.offset_s, duration_s=dur)

    def preload(self) -> list[tuple[str, str]]:
        """Decode every utterance into memory as int16; return ``(utt_id, reason)`` of failures."""
        failed = []
        for i, u in enumerate(self.utts):
            try:
                samples = self.load(i)
            except AudioError as err:
                failed.append((u.utt_id, err.reason))
                continue
            self._cache[i] = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
        return failed

    def other_voices(self, i: int, max_tries: int = 8):
        """``draw(rng, k)``: ``k`` other utterances than ``i``, of other speakers when the manifest names them.

        Babble made of the training set's own talkers is the closest offline stand-in for a
        crowded room. Unreadable picks are passed over; fewer than ``k`` may come back.
        """
        speaker = self.utts[i].speaker

        def draw(rng: np.random.Generator, k: int) -> list[np.ndarray]:
            picks: list[int] = []
            for _ in range(max_tries * k):
                if len(picks) == k:
                    break
                j = int(rng.integers(len(self.utts)))
                if j != i and j not in picks and not (speaker and self.utts[j].speaker == speaker):
                    picks.append(j)
            voices = []
            for j in picks:
                try:
                    voices.append(self.load(j))
                except AudioError:
                    continue
            return voices
        return draw

    def __getitem__(self, key: int | tuple[int, int] | tuple[int, int, int]):
        i, epoch, copy = (*key, 0)[:3] if isinstance(key, tuple) else (key, None, 0)
        u = self.utts[i]
        try:
            samples = self.load(i)
        except AudioError as err:
            return {"utt_id": u.utt_id, "error": str(err)}
        ids = self.tokenizer.encode(u.text) if self.tokenizer is not None else []
        if self.augment is not None and epoch is not None:
            others = self.other_voices(i) if self.augment.babble_prob > 0 else None
            augmented = self.augment(samples, utterance_rng(self.seed, epoch, i, copy), others=others, epoch=epoch)
            if self.feasible is not None and not self.feasible(len(augmented), ids):
                augmented = self.augment(samples, utterance_rng(self.seed, epoch, i, copy), speed=1.0, others=others,
                                         epoch=epoch)
            samples = augmented
        return {"utt_id": u.utt_id, "samples": torch.from_numpy(samples), "ids": ids, "duration_s": u.duration_s}


def collate(items: list[dict]) -> Batch:
    """Pad samples and targets; items that failed to load go to ``Batch.skipped``."""
    skipped = [(it["utt_id"], it["error"]) for it in items if "error" in it]
    items = [it for it in items if "error" not in it]
    n = len(items)
    wave_lens = torch.tensor([len(it["samples"]) for it in items], dtype=torch.long)
    target_lens = torch.tensor([len(it["ids"]) for it in items], dtype=torch.long)
    waves = torch.zeros(n, int(wave_lens.max()) if n else 0)
    targets = torch.zeros(n, int(target_lens.max()) if n else 0, dtype=torch.long)
    for k, it in enumerate(items):
        waves[k, : wave_lens[k]] = it["samples"]
        targets[k, : target_lens[k]] = torch.as_tensor(it["ids"], dtype=torch.long)
    return Batch(waves, wave_lens, targets, target_lens, [it["utt_id"] for it in items],
                 [float(it["duration_s"]) for it in items], skipped)


def filter_utterances(utts: Sequence[Utterance], tokenizer: Tokenizer, frames_for_duration, *,
                      min_duration_s: float, max_duration_s: float, split: str) -> list[Utterance]:
    """Drop utterances CTC cannot train on, logging a warning that names each one.

    Dropped: duration outside ``[min_duration_s, max_duration_s]``, characters outside the
    vocabulary, or a transcript longer than the subsampled frames can hold
    (``frames_for_duration(duration_s) < ctc_min_frames(ids)``).
    """
    kept = []
    for u in utts:
        reason = None
        if not min_duration_s <= u.duration_s <= max_duration_s:
            reason = f"duration {u.duration_s:.2f} s outside [{min_duration_s}, {max_duration_s}]"
        elif tokenizer.unknown_chars(u.text):
            reason = f"characters {sorted(tokenizer.unknown_chars(u.text))} not in the vocabulary"
        else:
            need, have = ctc_min_frames(tokenizer.encode(u.text)), frames_for_duration(u.duration_s)
            if need > have:
                reason = (f"transcript needs {need} CTC frames but {u.duration_s:.2f} s of audio gives {have} "
                          f"after subsampling")
        if reason:
            log.warning("%s: dropping utterance %s (%s): %s", split, u.utt_id, u.audio_path, reason)
        else:
            kept.append(u)
    if len(kept) < len(utts):
        log.warning("%s: dropped %d of %d utterances (named above)", split, len(utts) - len(kept), len(utts))
    return kept


def total_hours(utts: Sequence[Utterance]) -> float:
    """Hours of audio in ``utts``, from their manifest durations."""
    return math.fsum(u.duration_s for u in utts) / 3600
