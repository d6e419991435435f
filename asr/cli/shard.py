"""``asr shard``: a manifest's audio packed into WebDataset tar shards (:class:`asr.config.commands.ShardConfig`)."""

from __future__ import annotations

import sys

from asr.cli.common import tool
from asr.config.commands import ShardConfig


def _shard(c: ShardConfig) -> int:
    from asr.data.shards import write_shards

    r = write_shards(c.manifest, c.out, shard_size_mb=c.shard_size_mb, overwrite=c.overwrite)
    print(f"{r['utterances']} utterances in {r['shards']} shard(s) -> {r['manifest']} "
          f"(train with data.train_manifest={r['manifest']})")
    if r["skipped"]:
        print(f"left out {len(r['skipped'])} unreadable utterance(s):", file=sys.stderr)
        for reason in r["skipped"][:20]:
            print(f"  {reason}", file=sys.stderr)
    return 0


def shard_main(argv: list[str] | None = None) -> int:
    """``asr shard manifest=<jsonl> out=<dir> [shard_size_mb=256 overwrite=false]``."""
    from asr.data.shards import ShardError

    return tool("shard", _shard, argv, errors=(ShardError,))
