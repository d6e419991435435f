"""Where a training run stands: one typed record, stored in checkpoints as a plain dict."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace


@dataclass
class TrainState:
    """The loop's counters and running sums; all of it is saved, so a resumed run continues exactly.

    Under ``torchrun`` every rank holds the same values: losses, tokens and audio seconds are
    sums over all ranks. Losses are summed CTC negative log-likelihoods in nats.
    """

    epoch: int = 0  # epochs finished
    step: int = 0  # batches stepped over since the start, skipped ones included (the schedule advances on each)
    best_wer: float = math.inf  # best dev WER so far; NaN once an epoch is kept without a dev set
    best_epoch: int = -1  # the epoch (1-based) that scored best_wer; -1 before any
    batches_done: int = 0  # batches of the current epoch done; 0 at an epoch boundary
    epoch_loss: float = 0.0  # summed CTC loss of this epoch's kept batches (nats)
    epoch_tokens: int = 0  # target tokens of those batches
    epoch_audio_s: float = 0.0  # audio seconds this epoch's batches held
    epoch_train_s: float = 0.0  # wall seconds this epoch's steps took
    skipped_batches: int = 0  # updates skipped for a non-finite loss or gradient, or an empty batch
    nonfinite_run: int = 0  # consecutive skipped updates (trainer.max_nonfinite_steps stops the run)
    oom_splits: int = 0  # out-of-memory retries with the batch in more pieces
    settings: dict = field(default_factory=dict)  # the settings the weights depend on (checkpoints.shaping_settings)

    def to_dict(self) -> dict:
        """A plain dict of Python numbers, for ``torch.load(weights_only=True)``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict, defaults: TrainState | None = None) -> TrainState:
        """``defaults`` (or a fresh state) with every field ``saved`` holds; keys that are not fields are ignored.

        A checkpoint from before a field existed keeps that field's value from ``defaults``.
        """
        known = {f.name for f in fields(cls)}
        return replace(defaults or cls(), **{k: v for k, v in saved.items() if k in known})

    def end_epoch(self) -> None:
        """Count the epoch as finished and zero the per-epoch sums."""
        self.epoch += 1
        self.batches_done = 0
        self.epoch_loss, self.epoch_tokens, self.epoch_audio_s, self.epoch_train_s = 0.0, 0, 0.0, 0.0

    @property
    def epoch_mean_loss(self) -> float:
        """This epoch's loss per target token (nats)."""
        return self.epoch_loss / max(1, self.epoch_tokens)

    @property
    def audio_s_per_s(self) -> float:
        """This epoch's training speed: audio seconds per wall second of steps."""
        return self.epoch_audio_s / max(self.epoch_train_s, 1e-9)
