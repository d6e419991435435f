"""Training: CTC loss, AdamW with warm-up + decay, duration-bucketed batches, exact resume.

``train(settings, run_dir)`` reads top to bottom: set up, then per epoch train, score on
dev and save, then finish. It takes validated :class:`asr.config.schema.Settings` (no
Hydra), so it runs from a notebook too. The pieces live beside it: the data in
:mod:`~asr.training.inputs`, one step in :mod:`~asr.training.steps`, checkpoints in
:mod:`~asr.training.checkpoints`, the counters in :class:`~asr.training.state.TrainState`.

Files in ``run_dir``:
    checkpoints/last.pt      full training state after the latest epoch (or step)
    checkpoints/epoch-N.pt   the last few epochs' states
    model.pt                 best model so far by dev WER (a model file, see asr.models.checkpoint)
    train_log.jsonl          one line per epoch (loss, dev WER/CER, lr, throughput)
    tensorboard/             TensorBoard event files

Under ``torchrun`` the same loop runs as data-parallel training (see :mod:`asr.training.distributed`):
each rank takes its share of every epoch's batches, ranks agree on every step's token count
and loss (so a batch that is skipped is skipped by all) and sum their gradients (so the
gradient is that of the union of the ranks' batches), dev evaluation is sharded across ranks
and its hypotheses gathered, and only rank 0 writes files. Every rank resumes from the same
``checkpoints/last.pt``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.config.schema import ConfigError, Settings
from asr.decoding.ctc import build_decoder
from asr.fileio import atomic_open, release_lock
from asr.frontend.features import SpecAugment
from asr.frontend.stats import compute_stats, load_stats
from asr.inference.evaluate import evaluate
from asr.inference.metrics import ErrorCounts, format_pct
from asr.models.acoustic import Recognizer, build_recognizer, num_parameters
from asr.models.checkpoint import average_checkpoints, last_epoch_checkpoints, load_model, model_bundle, save_model
from asr.runtime import memory_mb, resolve_device, seed_everything, setup_threads
from asr.training import checkpoints, distributed
from asr.training.inputs import TrainData, equal_work, load_training_data
from asr.training.optim import make_optimizer, make_scheduler
from asr.training.report import progress_bar, read_history, tensorboard, write_history
from asr.training.state import TrainState
from asr.training.steps import TrainingDiverged, train_step

__all__ = ["TrainingDiverged", "train"]

log = logging.getLogger(__name__)


def train(s: Settings, run_dir: str | Path, resolved_config: dict | None = None) -> dict:
    """Train a recognizer; returns the final summary (best dev WER, paths, throughput).

    ``resolved_config`` is stored in the model file (the CLI passes the Hydra-resolved
    config); by default ``s.to_dict()``.
    """
    try:
        run = set_up(s, Path(run_dir), resolved_config)
        for epoch in range(run.state.epoch, s.trainer.max_epochs):
            entry = train_epoch(run, epoch)
            improved = dev_pass(run, entry)
            save(run, entry, improved)
        return finish(run)
    finally:
        release_lock(run_dir)  # set_up's hold on the run directory (none on ranks > 0)


@dataclass
class Run:
    """Everything the stages share: settings, where this rank stands, the data, the model and its optimizer."""

    settings: Settings
    run_dir: Path
    world: distributed.World
    device: torch.device
    data: TrainData
    model: Recognizer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ctc: torch.nn.CTCLoss
    state: TrainState
    dev_decoder: object  # picks the best epoch (asr.decoding.ctc.build_decoder)
    writer: object | None  # TensorBoard SummaryWriter, rank 0 only
    history: list[dict]  # train_log.jsonl rows so far
    bundle_cfg: dict  # the config stored in model files

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"


# ---- set up -------------------------------------------------------------------------------------


def set_up(s: Settings, run_dir: Path, resolved_config: dict | None) -> Run:
    """Join the process group, seed, load the data, build model, optimizer and schedule; resume if asked."""
    world, device = distributed.init_from_env(resolve_device(s.trainer.device), training=True)
    if world.is_main:  # only rank 0 writes files, so only rank 0 holds the directory
        checkpoints.claim_run_dir(run_dir, resume=s.trainer.resume, overwrite=s.trainer.overwrite)
    threads = setup_threads(distributed.threads_per_rank(s.trainer.threads, world))
    seed_everything(s.trainer.seed)
    log.info("run directory %s; device %s, %d CPU thread(s)%s", run_dir.resolve(), device, threads,
             f"; rank {world.rank} of {world.size}" if world.size > 1 else "")
    if not s.data.train_manifest:
        raise ConfigError("data.train_manifest is not set (e.g. data.train_manifest=path/to/train.jsonl)")
    last = run_dir / "checkpoints" / "last.pt"
    if s.trainer.resume:
        checkpoints.check_resumable(last, s)
    data = load_training_data(s, world, device)
    model = _build_model(s, data, world, device)
    optimizer = make_optimizer(model.parameters(), s)
    scheduler = make_scheduler(optimizer, s.optim, s.trainer.max_epochs * len(data.sampler))
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum", zero_infinity=False)
    state = TrainState(settings=checkpoints.shaping_settings(s))
    if s.trainer.resume:
        state = checkpoints.resume(last, model, optimizer, scheduler, data.sampler, state)
    dev_decoder = build_decoder(s.decoder.name, data.tokenizer.vocab, **s.decoder.options())
    writer = tensorboard(run_dir) if s.trainer.tensorboard and world.is_main else None
    history = read_history(run_dir / "train_log.jsonl", state.epoch)
    return Run(s, run_dir, world, device, data, model, optimizer, scheduler, ctc, state, dev_decoder, writer,
               history, resolved_config or s.to_dict())


def _build_model(s: Settings, data: TrainData, world: distributed.World, device: torch.device) -> Recognizer:
    """The recognizer with its feature statistics, on ``device``, identical on every rank."""
    a = s.augment
    spec_augment = SpecAugment(a.freq_masks, a.freq_width, a.time_masks, a.time_width, a.max_time_ratio) \
        if a.spec_augment else None
    model = build_recognizer(s.features, len(data.tokenizer), spec_augment=spec_augment, **vars(s.model))
    stats = load_stats(s.data.stats, s.features) if s.data.stats else compute_stats(data.train_utts, s.features)
    model.features.set_stats(stats["mean"], stats["std"])
    model.to(device)
    if world.size > 1:
        distributed.broadcast_module(model)  # every replica starts from rank 0's weights
        torch.manual_seed(s.trainer.seed + 1000 * world.rank)  # dropout and SpecAugment differ between ranks
    log.info("model: %s %d x %d%s, %.2f M parameters", s.model.rnn_type.upper(), s.model.num_layers,
             s.model.hidden_size, " bidirectional" if s.model.bidirectional else "", num_parameters(model) / 1e6)
    return model


# ---- one epoch ----------------------------------------------------------------------------------


def train_epoch(run: Run, epoch: int) -> dict:
    """Train epoch ``epoch`` (0-based) from ``state.batches_done`` on; return its log row, without dev scores."""
    s, state, sampler = run.settings, run.state, run.data.sampler
    sampler.set_epoch(epoch)
    equal_work(sampler, epoch, s.data.rank_shards)
    sampler.start_batch = state.batches_done  # a run resumed mid-epoch continues where it stopped
    run.model.train()
    if run.model.spec_augment is not None and epoch < s.augment.from_epoch:
        run.model.spec_augment.eval()  # SpecAugment, like the waveform parts, starts at augment.from_epoch
    bar = progress_bar(len(sampler), epoch, s.trainer.max_epochs) if s.trainer.progress and run.world.is_main \
        else None
    if bar is not None:
        bar.update(state.batches_done)
    t_epoch = time.perf_counter()
    for batch in run.data.loader:
        t0 = time.perf_counter()
        loss_value, audio_s = train_step(run.model, run.ctc, run.optimizer, batch, state, device=run.device,
                                         grad_clip=s.optim.grad_clip, ckpt_dir=run.ckpt_dir,
                                         max_nonfinite_steps=s.trainer.max_nonfinite_steps)
        run.scheduler.step()
        state.step += 1
        state.batches_done += 1
        state.epoch_audio_s += audio_s
        state.epoch_train_s += time.perf_counter() - t0
        _after_step(run, epoch, loss_value, bar)
    if bar is not None:
        bar.close()
    return {"epoch": epoch + 1, "step": state.step, "lr": run.scheduler.get_last_lr()[0],
            "train_loss": state.epoch_mean_loss, "train_audio_s_per_s": state.audio_s_per_s,
            "epoch_seconds": time.perf_counter() - t_epoch, "skipped_batches": state.skipped_batches,
            "oom_splits": state.oom_splits, **{k: round(v, 1) for k, v in memory_mb().items() if v is not None}}


def _after_step(run: Run, epoch: int, loss_value: float, bar) -> None:
    """Progress bar, mid-epoch checkpoint, log line and TensorBoard scalars after a step."""
    s, state = run.settings, run.state
    speed, lr = state.audio_s_per_s, run.scheduler.get_last_lr()[0]
    if bar is not None:
        bar.set_postfix(loss=f"{loss_value:.3f}", audio_s_per_s=f"{speed:.0f}", refresh=False)
        bar.update(1)
    every = s.trainer.checkpoint_every_steps
    if every and state.step % every == 0 and state.batches_done < len(run.data.sampler):
        _save_checkpoint(run)
    due = state.step % s.trainer.log_every_steps == 0
    if bar is None and run.world.is_main and due:
        log.info("epoch %d step %d  batch %d/%d  loss %.4f  lr %.2e  %.0f audio-s/s", epoch + 1, state.step,
                 state.batches_done, len(run.data.sampler), loss_value, lr, speed)
    if run.writer is not None and due:
        run.writer.add_scalar("train/loss", loss_value, state.step)
        run.writer.add_scalar("train/lr", lr, state.step)
        run.writer.add_scalar("train/audio_seconds_per_second", speed, state.step)


def _save_checkpoint(run: Run) -> None:
    # looked up on the module at each call, so a test can stand in for it
    checkpoints.save_checkpoint(run.ckpt_dir, run.model, run.optimizer, run.scheduler, run.data.sampler, run.state,
                                run.settings.trainer.keep_checkpoints)


# ---- dev pass, save -----------------------------------------------------------------------------


def dev_pass(run: Run, entry: dict) -> bool:
    """Score the dev set when due (adding ``dev_wer``/``dev_cer`` to ``entry``); return whether the model improved.

    Without a dev set the latest model is the one kept.
    """
    s, epoch = run.settings, entry["epoch"]
    dev_utts = run.data.dev_utts
    improved = not dev_utts
    if dev_utts and (epoch % s.trainer.eval_every_epochs == 0 or epoch == s.trainer.max_epochs):
        dev, per_set = _score_dev_sets(run)
        entry.update(dev_wer=dev["wer"], dev_cer=dev["cer"])
        if per_set:  # a list of dev sets: each one's WER too (the best epoch is chosen on all)
            entry["dev_sets"] = per_set
        if run.writer is not None:
            run.writer.add_scalar("dev/wer", dev["wer"], epoch)
            run.writer.add_scalar("dev/cer", dev["cer"], epoch)
            for i, scores in enumerate(entry.get("dev_sets", {}).values()):
                run.writer.add_scalar(f"dev/wer_set{i}", scores["wer"], epoch)
        improved = dev["wer"] < run.state.best_wer
    if run.writer is not None:
        run.writer.add_scalar("train/epoch_loss", entry["train_loss"], epoch)
    return improved


def _score_dev_sets(run: Run) -> tuple[dict, dict]:
    """WER and CER over all dev utterances, and per set when ``data.dev_manifest`` is a list.

    Each set is decoded once; the pooled rates add the sets' error counts up, as scoring them together would.
    """
    if not run.data.dev_sets:
        return _score_dev(run, run.data.dev_utts), {}
    per = {name: _score_dev(run, utts) for name, utts in run.data.dev_sets}
    pooled = {}
    for unit, key in (("words", "wer"), ("chars", "cer")):
        fields = [f.name for f in dataclasses.fields(ErrorCounts)]
        pooled[key] = ErrorCounts(**{f: sum(p[unit][f] for p in per.values()) for f in fields}).rate
    return pooled, {name: {"wer": p["wer"], "cer": p["cer"]} for name, p in per.items()}


def _score_dev(run: Run, utts: list) -> dict:
    """The model's dev summary on ``utts`` (sharded over the ranks and gathered)."""
    s = run.settings
    return evaluate(run.model, run.data.tokenizer, utts, out_dir=None, max_batch_duration_s=s.data.max_batch_duration_s,
                    device=run.device, rank=run.world.rank, world_size=run.world.size, decoder=run.dev_decoder)


def save(run: Run, entry: dict, improved: bool) -> None:
    """Close the epoch: the best model file when ``improved``, the checkpoint, the log row and line."""
    s, state = run.settings, run.state
    state.end_epoch()
    if improved:
        state.best_wer, state.best_epoch = entry.get("dev_wer", math.nan), entry["epoch"]
    if improved and run.world.is_main:
        save_model(run.run_dir / "model.pt", model_bundle(run.model, run.data.tokenizer.vocab, s.model,
                                                          config=run.bundle_cfg, metrics=dict(entry),
                                                          tokenizer=run.data.tokenizer))
    run.history.append(entry)
    _save_checkpoint(run)
    if run.world.is_main:
        write_history(run.run_dir / "train_log.jsonl", run.history)
    sets = "".join(f"  [{'/'.join(Path(name).parts[-2:])} {format_pct(v['wer'])}]"
                   for name, v in entry.get("dev_sets", {}).items())
    log.info("epoch %d/%d  loss %.4f  dev WER %s  CER %s%s  lr %.2e  %.0f audio-s/s  %.0f s%s",
             entry["epoch"], s.trainer.max_epochs, entry["train_loss"], format_pct(entry.get("dev_wer")),
             format_pct(entry.get("dev_cer")), sets, entry["lr"], entry["train_audio_s_per_s"], entry["epoch_seconds"],
             "  (best)" if improved else "")


# ---- finish -------------------------------------------------------------------------------------


def finish(run: Run) -> dict:
    """Close TensorBoard, average the last epochs if asked, write ``train_summary.json``; return the summary."""
    s, state, history = run.settings, run.state, run.history
    if run.writer is not None:
        run.writer.close()
    summary = {"best_dev_wer": state.best_wer, "best_epoch": state.best_epoch, "epochs": state.epoch,
               "model": str((run.run_dir / "model.pt").resolve()), "parameters": num_parameters(run.model),
               "train_audio_s_per_s": _mean([h["train_audio_s_per_s"] for h in history]),
               "train_minutes": sum(h["epoch_seconds"] for h in history) / 60,
               "skipped_batches": state.skipped_batches, "oom_splits": state.oom_splits}
    best = next((h for h in history if h["epoch"] == state.best_epoch), {})
    if "dev_sets" in best:
        summary["best_dev_sets"] = best["dev_sets"]
    if s.trainer.average_last > 1 and run.world.is_main:
        summary.update(_average_last(run))
    if run.world.is_main:
        with atomic_open(run.run_dir / "train_summary.json") as f:
            json.dump(summary, f, indent=2)
    log.info("best dev WER %s at epoch %d; model file %s", format_pct(state.best_wer), state.best_epoch,
             summary["model"])
    return summary


def _average_last(run: Run) -> dict:
    """``model_avg.pt``: the mean of the last epochs' weights, scored on dev beside the best (rank 0 alone)."""
    s, run_dir = run.settings, run.run_dir
    avg = average_checkpoints(last_epoch_checkpoints(run_dir, s.trainer.average_last), run_dir / "model.pt",
                              run_dir / "model_avg.pt")
    out = {"averaged_model": str(avg.resolve())}
    if run.data.dev_utts:  # unsharded: the other ranks are done
        avg_model, _, _ = load_model(avg)
        out["averaged_dev_wer"] = evaluate(avg_model.to(run.device), run.data.tokenizer, run.data.dev_utts,
                                           out_dir=None, max_batch_duration_s=s.data.max_batch_duration_s,
                                           device=run.device, decoder=run.dev_decoder)["wer"]
        log.info("model_avg.pt (last %d epochs): dev WER %s", s.trainer.average_last,
                 format_pct(out["averaged_dev_wer"]))
    return out


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0
