"""Training checkpoints: save the whole state atomically, refuse to resume a run under other settings, resume it.

A checkpoint is a plain dict that ``torch.load(weights_only=True)`` reads::

    model, optimizer, scheduler, sampler   state dicts
    torch_rng (and cuda_rng)               rank 0's RNG streams; rank_rng holds every rank's
    state                                  TrainState.to_dict()
    world_size                             the number of processes that wrote it
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from asr.config.schema import ConfigError, Settings
from asr.fileio import atomic_torch_save, hold_lock
from asr.models.checkpoint import safe_load
from asr.training import distributed
from asr.training.state import TrainState

log = logging.getLogger(__name__)


def shaping_settings(s: Settings) -> dict:
    """The settings a checkpoint's weights depend on; resuming with others is refused."""
    return {"features": s.features.to_dict(), "model": dict(vars(s.model))}


RUN_OUTPUTS = ("model.pt", "checkpoints", "train_log.jsonl", "train_summary.json")  # what a run leaves


def claim_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Lock ``run_dir`` for this process (:func:`asr.fileio.hold_lock`; the caller releases it), and refuse
    to replace a run's outputs.

    A directory that already holds a run's outputs is refused, naming them, unless the run is
    continued (``resume``) or its replacement was asked for (``overwrite``). Rank 0 alone calls this.

    Raises:
        asr.fileio.DirectoryInUse: another job holds the directory.
        ConfigError: outputs of an earlier run are there.
    """
    hold_lock(run_dir)
    found = [name for name in RUN_OUTPUTS if _nonempty(run_dir / name)]
    if found and not (resume or overwrite):
        raise ConfigError(f"{run_dir} already holds a training run ({', '.join(found)}); continue it with "
                          "trainer.resume=true, replace it with trainer.overwrite=true, or choose another "
                          "hydra.run.dir")


def _nonempty(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def check_resumable(path: Path, s: Settings) -> None:
    """Raise :class:`ConfigError` unless ``path`` exists and was trained with ``s``'s shaping settings.

    Also removes temporary files a killed run left half-written beside it.
    """
    if not path.is_file():
        raise ConfigError(f"trainer.resume=true but there is no checkpoint at {path} "
                          "(point hydra.run.dir at the run to continue, or drop trainer.resume)")
    for stale in path.parent.glob(".*.tmp"):  # half-written by a killed run; the rename never happened
        stale.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted checkpoint write", stale)
    saved = safe_load(path).get("state", {}).get("settings")
    if not saved:
        return  # a checkpoint from before settings were recorded
    now = shaping_settings(s)
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


def save_checkpoint(ckpt_dir: Path, model, optimizer, scheduler, sampler, state: TrainState, keep: int) -> None:
    """Write ``last.pt`` (and at an epoch boundary ``epoch-N.pt``, keeping the last ``keep``).

    Rank 0 writes; every rank must call it, since it gathers each rank's RNG state.
    """
    rngs = distributed.all_gather(_rng_state())  # dropout/SpecAugment streams differ between ranks
    if not distributed.world().is_main:
        return
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(), **rngs[0], "state": state.to_dict(), "world_size": len(rngs)}
    if len(rngs) > 1:
        ckpt["rank_rng"] = rngs
    atomic_torch_save(ckpt, ckpt_dir / "last.pt")
    if state.batches_done == 0 and keep > 0:  # epoch boundary: keep a numbered copy too
        atomic_torch_save(ckpt, ckpt_dir / f"epoch-{state.epoch}.pt")
        numbered = sorted(ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
        for old in numbered[:-keep]:
            old.unlink(missing_ok=True)


def resume(path: Path, model, optimizer, scheduler, sampler, state: TrainState) -> TrainState:
    """Load ``path`` into the training objects and this rank's RNG; return ``state`` updated from it."""
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
    state = TrainState.from_dict(ckpt["state"], state)
    log.info("resumed from %s: epoch %d, step %d, %d batches into the epoch", path, state.epoch, state.step,
             state.batches_done)
    return state
