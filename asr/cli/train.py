"""``asr train`` and ``asr stats``: the commands on the training settings (:class:`asr.config.schema.Settings`)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from asr.cli.common import conf_app, fail, resolved, shared_run_dir, torchrun_aware, validated
from asr.config.commands import StatsConfig
from asr.config.schema import RETIRED, ConfigError, Settings
from asr.fileio import atomic_write_text, refuse_to_replace, release_lock


@conf_app("train")
def _train_app(cfg: DictConfig) -> float:
    from asr.training import distributed
    from asr.training.checkpoints import claim_run_dir
    from asr.training.train import train

    d = resolved(cfg)
    unknown = sorted(set(d) - set(Settings.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(Settings.__dataclass_fields__)}")
    s = Settings.from_dict(d)
    world, _, run_dir = shared_run_dir(s.trainer.device, training=True)
    if world.is_main:  # claimed before config.resolved.yaml replaces an earlier run's
        claim_run_dir(run_dir, resume=s.trainer.resume, overwrite=s.trainer.overwrite)
        atomic_write_text(run_dir / "config.resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(d)))
    try:
        summary = train(s, run_dir, resolved_config=d)
    finally:
        release_lock(run_dir)  # the claim above (a multirun goes on to other directories); none on ranks > 0
    distributed.shutdown()
    return summary["best_dev_wer"]  # the value a sweeper optimises


def _retired_keys_named(main):
    """Entry point wrapper: a retired key on the command line gets its own message, not Hydra's "not in struct"."""
    @functools.wraps(main)
    def wrapper():
        for arg in sys.argv[1:]:
            key = arg.split("=", 1)[0].lstrip("+~")
            group, _, name = key.partition(".")
            if name in RETIRED.get(group, ()):
                fail(f"{key} is retired (nothing read it): score a test set with "
                     f"`asr evaluate model=<model.pt> data.manifest=<test.jsonl>`")
        return main()
    return wrapper


train_main = torchrun_aware(_retired_keys_named(_train_app))


@conf_app("stats")
def stats_main(cfg: DictConfig) -> None:
    from asr.data.manifest import read_manifests
    from asr.frontend.stats import build_vocab, compute_stats, piece_model_path, save_stats, save_vocab

    c = validated(cfg, StatsConfig)
    if not c.data.train_manifest:
        raise ConfigError("data.train_manifest is not set")
    out = Path(c.output_dir)
    pieces = [piece_model_path(out / "vocab.json")] if c.data.tokenizer != "char" else []
    refuse_to_replace([out / "vocab.json", *pieces, out / "stats.pt"], overwrite=c.overwrite)
    utts = read_manifests(c.data.train_manifest)  # every shard: vocabulary and statistics cover the whole corpus
    tokenizer = build_vocab(utts, c.data.tokenizer, c.data.vocab_size)
    save_vocab(out / "vocab.json", tokenizer)
    stats = compute_stats(utts, c.features)
    save_stats(out / "stats.pt", stats)
    kind = f"{c.data.tokenizer} " if pieces else ""
    print(f"vocabulary: {len(tokenizer)} {kind}symbols -> {out / 'vocab.json'}; "
          f"statistics over {stats['frames']} frames -> {out / 'stats.pt'}")
