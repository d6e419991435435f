"""Training: CTC loss, AdamW with warm-up + decay, duration-bucketed batches, exact resume.

``train(settings, run_dir)`` is the whole loop, readable top to bottom. It takes
validated :class:`asr.config.schema.Settings` (no Hydra), so it runs from a notebook too.

Files in ``run_dir``:
    checkpoints/last.pt      full training state after the latest epoch (or step)
    checkpoints/epoch-N.pt   the last few epochs' states
    model.pt                 best model so far by dev WER (a model file, see asr.models.checkpoint)
    train_log.jsonl          one line per epoch (loss, dev WER/CER, lr, throughput)
    tensorboard/             TensorBoard event files

Under ``torchrun`` the same loop runs as data-parallel training (see :mod:`asr.training.distributed`):
the model is wrapped in ``DistributedDataParallel``, each rank takes its share of every
epoch's batches, ranks agree on every step's loss and token count (so a batch that is
skipped is skipped by all, and the gradient is that of the union of the ranks' batches),
dev evaluation is sharded across ranks and its hypotheses gathered, and only rank 0
writes files. Every rank resumes from the same ``checkpoints/last.pt``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from asr.config.schema import ConfigError, Settings
from asr.data.dataset import (
    DurationBatchSampler,
    SpeechDataset,
    collate,
    ctc_min_frames,
    filter_utterances,
    total_hours,
)
from asr.data.manifest import manifest_files, read_manifests
from asr.decoding.ctc import build_decoder
from asr.fileio import atomic_open, atomic_torch_save
from asr.frontend.features import SpecAugment, output_frames_for_duration
from asr.frontend.stats import build_vocab, compute_stats, load_stats, load_vocab
from asr.inference.evaluate import evaluate
from asr.models.acoustic import build_recognizer, num_parameters
from asr.models.checkpoint import (
    average_checkpoints,
    last_epoch_checkpoints,
    load_model,
    model_bundle,
    safe_load,
    save_model,
)
from asr.runtime import memory_mb, resolve_device, seed_everything, setup_threads
from asr.training import distributed

log = logging.getLogger(__name__)


def lr_lambda(step: int, warmup_steps: int, total_steps: int, schedule: str, final_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then decay to ``final_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return final_ratio ** progress  # exponential


def make_optimizer(params, s: Settings) -> torch.optim.Optimizer:
    o = s.optim
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.betas[0], weight_decay=o.weight_decay, nesterov=True)


def train(s: Settings, run_dir: str | Path, resolved_config: dict | None = None) -> dict:
    """Train a recognizer; returns the final summary (best dev WER, paths, throughput)."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    world, device = distributed.init_from_env(resolve_device(s.trainer.device))
    main = world.is_main  # only rank 0 writes files
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    threads = setup_threads(distributed.threads_per_rank(s.trainer.threads, world))
    seed_everything(s.trainer.seed)
    log.info("run directory %s; device %s, %d CPU thread(s)%s", run_dir.resolve(), device, threads,
             f"; rank {world.rank} of {world.size}" if world.size > 1 else "")

    # ---- data -------------------------------------------------------------------------
    if not s.data.train_manifest:
        raise ConfigError("data.train_manifest is not set (e.g. data.train_manifest=path/to/train.jsonl)")
    if s.trainer.resume:
        _check_resumable(ckpt_dir / "last.pt", s)
    train_files = _train_files(s, world)
    if s.data.validate:
        _validate_data(s, train_files)
    train_utts = read_manifests(train_files)
    dev_utts = read_manifests(s.data.dev_manifest) if s.data.dev_manifest else []
    tokenizer = load_vocab(s.data.vocab) if s.data.vocab else build_vocab(train_utts)
    frames = lambda d: output_frames_for_duration(s.features, d)  # noqa: E731
    train_utts = filter_utterances(train_utts, tokenizer, frames, min_duration_s=s.data.min_duration_s,
                                   max_duration_s=s.data.max_duration_s, split="train")
    if not train_utts:
        raise ConfigError(f"data.train_manifest: no usable utterances in {s.data.train_manifest}")
    log.info("train: %d utterances, %.2f h; dev: %d utterances; vocabulary %d symbols",
             len(train_utts), total_hours(train_utts), len(dev_utts), len(tokenizer))
    sr = s.features.sample_rate_hz
    feasible = lambda n, ids: frames(n / sr) >= ctc_min_frames(ids)  # noqa: E731 - after speed perturbation
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
                                   tag_epoch=dataset.augment is not None)
    _equal_work(sampler, 0, s.data.rank_shards)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=s.data.num_workers, pin_memory=device.type == "cuda",
                                         persistent_workers=s.data.num_workers > 0,
                                         # its own generator: starting an epoch's iterator must not draw from
                                         # the global RNG, or SpecAugment's masks shift after a mid-epoch resume
                                         generator=torch.Generator().manual_seed(s.trainer.seed))

    # ---- model, optimizer, schedule -------------------------------------------------------
    a = s.augment
    spec_augment = SpecAugment(a.freq_masks, a.freq_width, a.time_masks, a.time_width, a.max_time_ratio) \
        if a.spec_augment else None
    model = build_recognizer(s.features, len(tokenizer), spec_augment=spec_augment, **vars(s.model))
    stats = load_stats(s.data.stats, s.features) if s.data.stats else compute_stats(train_utts, s.features)
    model.features.set_stats(stats["mean"], stats["std"])
    model.to(device)
    if world.size > 1:
        # buffers (feature statistics) never change while training: no need to broadcast them every step
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      forward_sync_buffers=False)
        torch.manual_seed(s.trainer.seed + 1000 * world.rank)  # dropout and SpecAugment differ between ranks
    log.info("model: %s %d x %d%s, %.2f M parameters", s.model.rnn_type.upper(), s.model.num_layers,
             s.model.hidden_size, " bidirectional" if s.model.bidirectional else "", num_parameters(model) / 1e6)
    optimizer = make_optimizer(model.parameters(), s)
    total_steps = s.trainer.max_epochs * len(sampler)
    o = s.optim
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_lambda(step, o.warmup_steps, total_steps, o.schedule, o.final_lr_ratio))
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=False)

    state = {"epoch": 0, "step": 0, "best_wer": math.inf, "best_epoch": -1, "batches_done": 0,
             "epoch_loss": 0.0, "epoch_tokens": 0, "epoch_audio_s": 0.0, "epoch_train_s": 0.0, "skipped_batches": 0,
             "nonfinite_run": 0, "oom_splits": 0, "settings": _shaping_settings(s)}
    if s.trainer.resume:
        state = _resume(ckpt_dir / "last.pt", model, optimizer, scheduler, sampler, state)

    dev_decoder = build_decoder(s.decoder.name, tokenizer.vocab, **s.decoder.options())  # picks the best epoch
    writer = _tensorboard(run_dir) if s.trainer.tensorboard and main else None
    bundle_cfg = resolved_config or s.to_dict()
    history = _read_history(run_dir / "train_log.jsonl", state["epoch"])
    for epoch in range(state["epoch"], s.trainer.max_epochs):
        sampler.set_epoch(epoch)
        _equal_work(sampler, epoch, s.data.rank_shards)
        sampler.start_batch = state["batches_done"]
        model.train()
        bar = _progress(len(sampler), epoch, s) if s.trainer.progress and main else None
        if bar is not None:
            bar.update(state["batches_done"])
        t_epoch = time.perf_counter()
        for batch in loader:
            t0 = time.perf_counter()
            for utt_id, reason in batch.skipped:
                log.warning("train: utterance %s skipped: %s", utt_id, reason)
            loss_sum, tokens = torch.tensor(math.nan), 0  # a batch whose audio all failed to load
            if batch.utt_ids:
                batch = batch.to(device)
                tokens = int(batch.target_lens.sum())
                if world.size == 1:  # forward + backward, split and retried on out-of-memory
                    loss_sum = _forward_backward(model, ctc, optimizer, batch, tokens, state)
                else:  # through DDP (gradients averaged over ranks); backward after the reduction below,
                    # so every rank normalises by the global tokens
                    log_probs, lengths = ddp(batch.waves, batch.wave_lens)
                    # CTCLoss wants (T, B, V)
                    loss_sum = ctc(log_probs.transpose(0, 1), batch.targets, lengths, batch.target_lens)
            # every rank learns the step's total loss and tokens, and whether any rank's batch is unusable
            total_loss, tokens, bad, audio_s = distributed.all_reduce(
                [loss_sum.item() if tokens else 0.0, tokens, float(not tokens or not torch.isfinite(loss_sum)),
                 batch.audio_seconds])
            loss_value = total_loss / max(tokens, 1)
            if bad:
                optimizer.zero_grad(set_to_none=True)
                _skip_update(state, "non-finite loss or empty batch" + (" on some rank" if world.size > 1 else "")
                             + ", batch skipped", batch, s.trainer.max_nonfinite_steps, ckpt_dir)
            else:
                if world.size > 1:
                    optimizer.zero_grad(set_to_none=True)
                    (loss_sum / tokens * world.size).backward()  # DDP averages over ranks: grad of total / tokens
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
                if torch.isfinite(grad_norm):
                    optimizer.step()
                    state["nonfinite_run"] = 0
                else:
                    _skip_update(state, "non-finite gradient, update skipped", batch, s.trainer.max_nonfinite_steps,
                                 ckpt_dir)
                state["epoch_loss"] += total_loss
                state["epoch_tokens"] += int(tokens)
            scheduler.step()
            state["step"] += 1
            state["batches_done"] += 1
            dt = time.perf_counter() - t0
            state["epoch_audio_s"] += audio_s
            state["epoch_train_s"] += dt
            speed = state["epoch_audio_s"] / max(state["epoch_train_s"], 1e-9)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_value:.3f}", audio_s_per_s=f"{speed:.0f}", refresh=False)
                bar.update(1)
            every = s.trainer.checkpoint_every_steps
            if every and state["step"] % every == 0 and state["batches_done"] < len(sampler):
                _save_checkpoint(ckpt_dir, model, optimizer, scheduler, sampler, state, s.trainer.keep_checkpoints)
            if bar is None and main and state["step"] % s.trainer.log_every_steps == 0:
                log.info("epoch %d step %d  batch %d/%d  loss %.4f  lr %.2e  %.0f audio-s/s", epoch + 1,
                         state["step"], state["batches_done"], len(sampler), loss_value, scheduler.get_last_lr()[0],
                         speed)
            if writer is not None and state["step"] % s.trainer.log_every_steps == 0:
                writer.add_scalar("train/loss", loss_value, state["step"])
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], state["step"])
                writer.add_scalar("train/audio_seconds_per_second", speed, state["step"])
        if bar is not None:
            bar.close()

        # ---- end of epoch: evaluate, checkpoint ---------------------------------------------
        entry = {"epoch": epoch + 1, "step": state["step"], "lr": scheduler.get_last_lr()[0],
                 "train_loss": state["epoch_loss"] / max(1, state["epoch_tokens"]),
                 "train_audio_s_per_s": state["epoch_audio_s"] / max(state["epoch_train_s"], 1e-9),
                 "epoch_seconds": time.perf_counter() - t_epoch, "skipped_batches": state["skipped_batches"],
                 "oom_splits": state["oom_splits"],
                 **{k: round(v, 1) for k, v in memory_mb().items() if v is not None}}
        if dev_utts and ((epoch + 1) % s.trainer.eval_every_epochs == 0 or epoch + 1 == s.trainer.max_epochs):
            dev = evaluate(model, tokenizer, dev_utts, out_dir=None, max_batch_duration_s=s.data.max_batch_duration_s,
                           device=device, rank=world.rank, world_size=world.size,  # sharded, gathered
                           decoder=dev_decoder)
            entry.update(dev_wer=dev["wer"], dev_cer=dev["cer"])
            if writer is not None:
                writer.add_scalar("dev/wer", dev["wer"], epoch + 1)
                writer.add_scalar("dev/cer", dev["cer"], epoch + 1)
            improved = dev["wer"] < state["best_wer"]
        else:
            improved = not dev_utts  # without a dev set the latest model is the one kept
        if writer is not None:
            writer.add_scalar("train/epoch_loss", entry["train_loss"], epoch + 1)
        state.update(epoch=epoch + 1, batches_done=0, epoch_loss=0.0, epoch_tokens=0, epoch_audio_s=0.0,
                     epoch_train_s=0.0)
        if improved:
            state.update(best_wer=entry.get("dev_wer", math.nan), best_epoch=epoch + 1)
        if improved and main:
            save_model(run_dir / "model.pt", model_bundle(model, tokenizer.vocab, s.model, config=bundle_cfg,
                                                          metrics={k: v for k, v in entry.items()}))
        history.append(entry)
        _save_checkpoint(ckpt_dir, model, optimizer, scheduler, sampler, state, s.trainer.keep_checkpoints)
        if main:
            _write_history(run_dir / "train_log.jsonl", history)
        log.info("epoch %d/%d  loss %.4f  dev WER %s  CER %s  lr %.2e  %.0f audio-s/s  %.0f s%s",
                 epoch + 1, s.trainer.max_epochs, entry["train_loss"], _pct(entry.get("dev_wer")),
                 _pct(entry.get("dev_cer")), entry["lr"], entry["train_audio_s_per_s"], entry["epoch_seconds"],
                 "  (best)" if improved else "")
    if writer is not None:
        writer.close()
    summary = {"best_dev_wer": state["best_wer"], "best_epoch": state["best_epoch"], "epochs": state["epoch"],
               "model": str((run_dir / "model.pt").resolve()), "parameters": num_parameters(model),
               "train_audio_s_per_s": _mean([h["train_audio_s_per_s"] for h in history]),
               "train_minutes": sum(h["epoch_seconds"] for h in history) / 60,
               "skipped_batches": state["skipped_batches"], "oom_splits": state["oom_splits"]}
    if s.trainer.average_last > 1 and main:  # the mean of the last epochs' weights, scored on dev beside the best
        avg = average_checkpoints(last_epoch_checkpoints(run_dir, s.trainer.average_last), run_dir / "model.pt",
                                  run_dir / "model_avg.pt")
        summary["averaged_model"] = str(avg.resolve())
        if dev_utts:  # rank 0 alone: the other ranks are done
            avg_model, _, _ = load_model(avg)
            summary["averaged_dev_wer"] = evaluate(avg_model.to(device), tokenizer, dev_utts, out_dir=None,
                                                   max_batch_duration_s=s.data.max_batch_duration_s,
                                                   device=device, decoder=dev_decoder)["wer"]
            log.info("model_avg.pt (last %d epochs): dev WER %s", s.trainer.average_last,
                     _pct(summary["averaged_dev_wer"]))
    if main:
        with atomic_open(run_dir / "train_summary.json") as f:
            json.dump(summary, f, indent=2)
    log.info("best dev WER %s at epoch %d; model file %s", _pct(state["best_wer"]), state["best_epoch"],
             summary["model"])
    return summary


# ---- faults: bad data, divergence, out of memory, resuming with other settings ---------------------


class TrainingDiverged(RuntimeError):
    """Too many consecutive updates had a non-finite loss or gradient (``trainer.max_nonfinite_steps``)."""


def _validate_data(s: Settings, train_files: list) -> None:
    """Refuse to start on fatal manifest problems (:mod:`asr.data.validate`); headers only, no decoding.

    ``train_files`` are the train manifests this rank reads (all of them, or its own shards).
    """
    from asr.data.validate import require_valid

    vocab = load_vocab(s.data.vocab) if s.data.vocab else None
    dev_files = manifest_files(s.data.dev_manifest) if s.data.dev_manifest else []
    for key, files in (("train_manifest", train_files), ("dev_manifest", dev_files)):
        for manifest in files:
            require_valid(str(manifest), f"data.{key}", features=s.features, tokenizer=vocab)


def _forward_backward(model, ctc, optimizer, batch, tokens: int, state: dict) -> torch.Tensor:
    """Summed CTC loss of ``batch``, with the gradients of ``loss / tokens`` left in the parameters.

    A non-finite loss gets no backward pass. On out-of-memory the batch is retried in 2, 4, 8...
    pieces, each attempt from zero gradients, so the gradients add up to the whole batch's;
    an utterance that does not fit on its own is an error naming it.
    """
    pieces = 1
    while True:
        optimizer.zero_grad(set_to_none=True)
        part = batch
        try:
            losses = []
            for part in batch.split(pieces):
                log_probs, lengths = model(part.waves, part.wave_lens)
                # CTCLoss wants (T, B, V)
                loss_sum = ctc(log_probs.transpose(0, 1), part.targets, lengths, part.target_lens)
                if torch.isfinite(loss_sum):
                    (loss_sum / tokens).backward()
                losses.append(loss_sum.detach())
            return torch.stack(losses).sum() if len(losses) > 1 else losses[0]
        except RuntimeError as err:
            if not _is_out_of_memory(err):
                raise
            if len(part.utt_ids) == 1:
                raise RuntimeError(f"out of memory on utterance {part.utt_ids[0]} ({part.durations_s[0]:.1f} s) "
                                   "alone: lower data.max_duration_s to leave it out") from None
        # out of the except block, so the failed attempt's tensors are freed before the retry
        optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        pieces = min(2 * pieces, len(batch.utt_ids))
        state["oom_splits"] += 1
        log.warning("step %d: out of memory on a batch of %d utterances (%.0f s padded); retrying in %d pieces "
                    "(utterances %s)", state["step"], len(batch.utt_ids), max(batch.durations_s) * len(batch.utt_ids),
                    pieces, ", ".join(batch.utt_ids))


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err)


def _skip_update(state: dict, what: str, batch, limit: int, ckpt_dir: Path) -> None:
    """Count a skipped update naming its utterances; stop the run after ``limit`` in a row."""
    state["skipped_batches"] += 1
    state["nonfinite_run"] += 1
    log.warning("step %d: %s (utterances %s)", state["step"], what, ", ".join(batch.utt_ids))
    if limit and state["nonfinite_run"] >= limit:
        raise TrainingDiverged(
            f"training diverged: {state['nonfinite_run']} consecutive steps had a non-finite loss or gradient "
            f"(trainer.max_nonfinite_steps={limit}; the last at step {state['step']}, utterances "
            f"{', '.join(batch.utt_ids)}). The last checkpoint, {ckpt_dir / 'last.pt'}, is intact; lower optim.lr "
            "or check these utterances, or set trainer.max_nonfinite_steps=0 to never stop")


def _shaping_settings(s: Settings) -> dict:
    """The settings a checkpoint's weights depend on; resuming with others is refused."""
    return {"features": s.features.to_dict(), "model": dict(vars(s.model))}


def _check_resumable(path: Path, s: Settings) -> None:
    if not path.is_file():
        raise ConfigError(f"trainer.resume=true but there is no checkpoint at {path} "
                          "(point hydra.run.dir at the run to continue, or drop trainer.resume)")
    for stale in path.parent.glob(".*.tmp"):  # half-written by a killed run; the rename never happened
        stale.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted checkpoint write", stale)
    saved = safe_load(path).get("state", {}).get("settings")
    if not saved:
        return  # a checkpoint from before settings were recorded
    now = _shaping_settings(s)
    differ = [(f"{g}.{k}", v, now[g].get(k)) for g in now for k, v in saved.get(g, {}).items() if now[g].get(k) != v]
    if differ:
        raise ConfigError(f"trainer.resume: {path} was trained with other settings: "
                          + "; ".join(f"{k} must be {v!r} to continue it (got {got!r})" for k, v, got in differ)
                          + ". Use the run's settings, or start a new run in another hydra.run.dir")


def _rng_state() -> dict:
    rng = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda_rng"] = torch.cuda.get_rng_state_all()
    return rng


def _save_checkpoint(ckpt_dir: Path, model, optimizer, scheduler, sampler, state: dict, keep: int) -> None:
    """Rank 0 writes the state; every rank must call it, since it gathers each rank's RNG state."""
    rngs = distributed.all_gather(_rng_state())  # dropout/SpecAugment streams differ between ranks
    if not distributed.world().is_main:
        return
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(), **rngs[0], "state": dict(state), "world_size": len(rngs)}
    if len(rngs) > 1:
        ckpt["rank_rng"] = rngs
    atomic_torch_save(ckpt, ckpt_dir / "last.pt")
    if state["batches_done"] == 0 and keep > 0:  # epoch boundary: keep a numbered copy too
        atomic_torch_save(ckpt, ckpt_dir / f"epoch-{state['epoch']}.pt")
        numbered = sorted(ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in numbered[:-keep]:
            old.unlink(missing_ok=True)


def _resume(path: Path, model, optimizer, scheduler, sampler, state: dict) -> dict:
    ckpt = safe_load(path)
    w = distributed.world()
    if ckpt.get("world_size", 1) != w.size:
        raise ConfigError(f"{path} was written by a run of {ckpt.get('world_size', 1)} process(es); resume it with "
                          f"as many (torchrun --nproc-per-node/--nnodes), not {w.size}, so it continues exactly")
    rng = ckpt["rank_rng"][w.rank] if w.size > 1 else ckpt
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    sampler.load_state_dict(ckpt["sampler"])
    torch.set_rng_state(rng["torch_rng"])
    if "cuda_rng" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda_rng"])
    state = {**state, **ckpt["state"]}
    log.info("resumed from %s: epoch %d, step %d, %d batches into the epoch", path, state["epoch"], state["step"],
             state["batches_done"])
    return state


def _train_files(s: Settings, world: distributed.World) -> list:
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


def _equal_work(sampler: DurationBatchSampler, epoch: int, per_rank_data: bool) -> None:
    """With per-rank data, cap every rank's epoch at the shortest rank's plan, so no rank waits at the end."""
    if per_rank_data:
        sampler.set_epoch(epoch)
        sampler.max_batches = int(distributed.all_reduce([sampler.plan_length()], op="min")[0])


def _read_history(path: Path, epochs_done: int) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["epoch"] <= epochs_done]


def _write_history(path: Path, history: list[dict]) -> None:
    with atomic_open(path) as f:
        for h in history:
            f.write(json.dumps(h) + "\n")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a trimmed install should still train
        log.warning("tensorboard is not installed; no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _progress(total: int, epoch: int, s: Settings):
    if not sys.stderr.isatty():  # logs get one line per epoch instead of a redrawn bar
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{s.trainer.max_epochs}", unit="batch", leave=False,
                dynamic_ncols=True)


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) or x == math.inf else f"{100 * x:.2f} %"


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
