"""One training step: forward and backward (split and retried on out-of-memory), agreement across ranks, update.

The same code runs in one process and under ``torchrun``. Each rank runs its own pieces'
forward and backward passes on the plain model, with every loss divided by the step's
*global* token count; the ranks then agree whether the step is usable and sum their
gradients in one all-reduce. So the gradient is that of (total loss over all ranks) /
(total tokens), a rank may split its batch into any number of pieces without the others
knowing, and an out-of-memory retry never leaves a collective half done. Alone, every
collective is the identity and the numbers are those of a plain loop.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from asr.data.dataset import Batch
from asr.training import distributed
from asr.training.state import TrainState

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient (``trainer.max_nonfinite_steps``)."""


def ctc_loss(model: torch.nn.Module, ctc: torch.nn.CTCLoss, batch: Batch) -> torch.Tensor:
    """Summed CTC loss of ``batch`` in nats (a 0-d tensor, graph attached)."""
    log_probs, lengths = model(batch.waves, batch.wave_lens)  # (B, T, V), (B,)
    return ctc(log_probs.transpose(0, 1), batch.targets, lengths, batch.target_lens)  # CTCLoss wants (T, B, V)


def forward_backward(model, ctc, batch: Batch, normaliser: float, state: TrainState) -> torch.Tensor:
    """Summed CTC loss of ``batch`` (nats), with the gradients of ``loss / normaliser`` left in the parameters.

    ``normaliser`` is the step's token count over all ranks. A non-finite piece gets no
    backward pass. On out-of-memory the batch is retried in 2, 4, 8... pieces, each attempt
    from zero gradients, so the gradients add up to the whole batch's; an utterance that
    does not fit on its own is an error naming it.
    """
    pieces = 1
    while True:
        model.zero_grad(set_to_none=True)
        part = batch
        try:
            losses = []
            for part in batch.split(pieces):
                loss_sum = ctc_loss(model, ctc, part)
                if torch.isfinite(loss_sum):
                    (loss_sum / normaliser).backward()
                losses.append(loss_sum.detach())
            return torch.stack(losses).sum() if len(losses) > 1 else losses[0]
        except RuntimeError as err:
            if not is_out_of_memory(err):
                raise
            if len(part.utt_ids) == 1:
                raise RuntimeError(f"out of memory on utterance {part.utt_ids[0]} ({part.durations_s[0]:.1f} s) "
                                   "alone: lower data.max_duration_s to leave it out") from None
        # out of the except block, so the failed attempt's tensors are freed before the retry
        model.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        pieces = min(2 * pieces, len(batch.utt_ids))
        state.oom_splits += 1
        log.warning("step %d: out of memory on a batch of %d utterances (%.0f s padded); retrying in %d pieces "
                    "(utterances %s)", state.step, len(batch.utt_ids), max(batch.durations_s) * len(batch.utt_ids),
                    pieces, ", ".join(batch.utt_ids))


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocation failure (CUDA's, or a CPU allocator's message)."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err)


def train_step(model, ctc, optimizer, batch: Batch, state: TrainState, *, device: torch.device, grad_clip: float,
               max_nonfinite_steps: int, ckpt_dir: Path) -> tuple[float, float]:
    """Train on this rank's ``batch`` of one step; return ``(loss per token, audio seconds)``, both over all ranks.

    Every rank calls it once per step, with its own batch. The update is skipped (by all
    ranks) when any rank's batch is empty or its loss non-finite, or the summed gradient is
    non-finite; :class:`TrainingDiverged` after ``max_nonfinite_steps`` in a row. The caller
    advances the schedule and ``state.step``.
    """
    for utt_id, reason in batch.skipped:
        log.warning("train: utterance %s skipped: %s", utt_id, reason)
    tokens = int(batch.target_lens.sum()) if batch.utt_ids else 0  # 0: a batch whose audio all failed to load
    # agreed before any forward: the normaliser is the global token count, and an empty batch stops every rank
    tokens, empty, audio_s = distributed.all_reduce([tokens, float(not tokens), batch.audio_seconds])
    loss_sum, splits_before = torch.tensor(math.nan), state.oom_splits
    if not empty:
        loss_sum = forward_backward(model, ctc, batch.to(device), tokens, state)
    total_loss, nonfinite, splits = distributed.all_reduce([0.0 if empty else loss_sum.item(),
                                                            float(not torch.isfinite(loss_sum)),
                                                            state.oom_splits - splits_before])
    state.oom_splits = splits_before + int(splits)  # every rank counts every rank's retries
    several = distributed.world().size > 1
    if empty or nonfinite:
        optimizer.zero_grad(set_to_none=True)
        skip_update(state, "non-finite loss or empty batch" + (" on some rank" if several else "")
                    + ", batch skipped", batch, max_nonfinite_steps, ckpt_dir)
        return total_loss / max(tokens, 1), audio_s
    distributed.all_reduce_gradients(model.parameters())  # the sum over ranks: grad of total loss / total tokens
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if torch.isfinite(grad_norm):
        optimizer.step()
        state.nonfinite_run = 0
    else:
        skip_update(state, "non-finite gradient, update skipped", batch, max_nonfinite_steps, ckpt_dir)
    state.epoch_loss += total_loss
    state.epoch_tokens += int(tokens)
    return total_loss / max(tokens, 1), audio_s


def skip_update(state: TrainState, what: str, batch: Batch, limit: int, ckpt_dir: Path) -> None:
    """Count a skipped update naming its utterances; stop the run after ``limit`` in a row (0: never)."""
    state.skipped_batches += 1
    state.nonfinite_run += 1
    log.warning("step %d: %s (utterances %s)", state.step, what, ", ".join(batch.utt_ids))
    if limit and state.nonfinite_run >= limit:
        raise TrainingDiverged(
            f"training diverged: {state.nonfinite_run} consecutive steps had a non-finite loss or gradient "
            f"(trainer.max_nonfinite_steps={limit}; the last at step {state.step}, utterances "
            f"{', '.join(batch.utt_ids)}). {_what_is_left(ckpt_dir)}; lower optim.lr "
            "or check these utterances, or set trainer.max_nonfinite_steps=0 to never stop")


def _what_is_left(ckpt_dir: Path) -> str:
    """The divergence message's word on checkpoints: the intact last one, or that none was written yet."""
    last = ckpt_dir / "last.pt"
    if last.is_file():
        return f"The last checkpoint, {last}, is intact (skipped steps never change the weights)"
    return f"No checkpoint was written before it stopped (none in {ckpt_dir}), so there is nothing to resume"
