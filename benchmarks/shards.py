"""Streaming decode (`data.preload=false`) from FLAC files vs WebDataset tar shards, and whether it feeds training.

1. `asr shard`'s writer packs the manifest into shards (`--shard-size-mb`), timed.
2. One epoch of the training loader (`SpeechDataset` + `DurationBatchSampler` + `collate`, as `asr-train`
   builds it) from the files and from the shards, with 0 and 2 decoding workers: utterances/s and audio-s/s
   read + decoded. Sources alternate, `--repeats` times, so machine noise hits both alike; best run kept.
3. The cost of indexing a shard (scanning its tar headers) in a process that has not opened it yet.
4. The real training step (`training_step.py`) on the same batches, from preloaded audio and from the shard
   loader with 2 workers prefetching, alternating: the ratio says whether streaming keeps the model fed.
5. If `webdataset` / `lhotse` are importable: that webdataset reads our shards, and each library's import time.

    python benchmarks/shards.py --manifest recipes/an4/exp/data/train.jsonl --steps 4 --rounds 3

Prints one JSON object, with `uptime` and the CPU flags: absolute speeds depend on what else the host runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hostinfo import host  # benchmarks/ is on sys.path when run as a script
from training_step import real_training_step

from asr.data import shards
from asr.data.dataset import DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.frontend.stats import build_vocab


def loader(utts, tok, max_batch_s: float, workers: int, *, preload: bool = False):
    ds = SpeechDataset(utts, tok, 16000)
    if preload:
        ds.preload()
    sampler = DurationBatchSampler([u.duration_s for u in utts], max_batch_s, seed=0, sort_jitter=0.1)
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                                       persistent_workers=False)


def read_rate(utts, tok, max_batch_s: float, workers: int) -> dict:
    """One epoch of decoding through the loader: utterances/s and audio-s/s (worker start-up included)."""
    t0 = time.perf_counter()
    n = audio = 0
    for b in loader(utts, tok, max_batch_s, workers):
        n += len(b.utt_ids) + len(b.skipped)
        audio += b.audio_seconds
    dt = time.perf_counter() - t0
    return {"utterances": n, "seconds": round(dt, 3), "utt_per_s": round(n / dt, 1),
            "audio_s_per_s": round(audio / dt, 1)}


def index_cost(manifest: str) -> dict:
    """Seconds to scan each shard's headers in a fresh interpreter's cache (the files may be in page cache)."""
    folder = Path(manifest).parent
    times = []
    for tar in sorted(folder.glob("shard-*.tar")):
        for open_shard in list(shards._OPEN):  # as a fresh process: no handle, no index yet
            shards._forget(open_shard)
        shards._INDEXES.clear()
        t0 = time.perf_counter()
        members = len(shards._open_shard(str(tar)).members)
        times.append((time.perf_counter() - t0, members))
    return {"shards": len(times), "members": sum(m for _, m in times),
            "ms_per_shard": round(1000 * sum(t for t, _ in times) / len(times), 2),
            "us_per_member": round(1e6 * sum(t for t, _ in times) / sum(m for _, m in times), 2)}


def fed(utts, tok, max_batch_s: float, steps: int, rounds: int, hidden: int, layers: int) -> dict:
    """Training audio-s/s from preloaded batches vs from the streaming shard loader (2 workers), same batches.

    Modes alternate for ``rounds`` rounds, so machine noise hits both alike. Each round starts a fresh
    iterator (for the streamed mode: fresh workers, nothing prefetched yet); its first batch is a warm-up
    step outside the timing, then ``steps`` steps are timed.
    """
    preloaded = loader(utts, tok, max_batch_s, 0, preload=True)
    streamed = loader(utts, tok, max_batch_s, 2)
    models = {}
    for name in ("preloaded", "shards_streamed_2_workers"):
        torch.manual_seed(0)
        models[name] = real_training_step(len(tok), hidden, layers)[1]
    seconds, audio = {name: [] for name in models}, {name: 0.0 for name in models}
    for _ in range(rounds):
        for name, source in (("preloaded", preloaded), ("shards_streamed_2_workers", streamed)):
            it, step = iter(source), models[name]
            step(next(it))
            t0 = time.perf_counter()
            for _ in range(steps):
                b = next(it)
                step(b)
                audio[name] += b.audio_seconds
            seconds[name].append(time.perf_counter() - t0)
            del it  # stops the round's workers
    out = {name: {"steps": steps * rounds, "seconds_per_round": [round(t, 2) for t in ts],
                  "audio_s_per_s": round(audio[name] / sum(ts), 1)} for name, ts in seconds.items()}
    out["streamed_over_preloaded"] = round(sum(seconds["preloaded"]) / sum(seconds["shards_streamed_2_workers"]), 3)
    return out


def libraries(manifest: str, n_utts: int) -> dict:
    """Import time of webdataset and lhotse (when importable), and whether webdataset reads our shards."""
    out = {}
    for mod in ("webdataset", "lhotse"):
        r = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {mod}"], capture_output=True,
                           text=True)
        last = [ln for ln in r.stderr.splitlines() if ln.rstrip().endswith(f" {mod}")]
        out[f"{mod}_import_s"] = round(int(last[-1].split("|")[1]) / 1e6, 2) if r.returncode == 0 and last else None
    try:
        import webdataset as wds
    except ImportError:
        return out
    tars = sorted(str(p) for p in Path(manifest).parent.glob("shard-*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False))
    out["webdataset_reads_our_shards"] = len(samples) == n_utts and all({"flac", "json"} <= set(s) for s in samples)
    return out




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="recipes/an4/exp/data/train.jsonl")
    p.add_argument("--shard-size-mb", type=float, default=8.0)  # AN4 is 35 MB: several shards, as a corpus has
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    result = {"host_before": {**host(), "torch_threads": torch.get_num_threads()}}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        written = shards.write_shards(a.manifest, Path(tmp) / "sh", shard_size_mb=a.shard_size_mb)
        result["write"] = {"seconds": round(time.perf_counter() - t0, 2), "shards": written["shards"],
                           "utterances": written["utterances"]}
        sources = {"files": read_manifest(a.manifest), "shards": read_manifest(written["manifest"])}
        tok = build_vocab(sources["files"])
        runs: dict[str, list[dict]] = {}
        for _ in range(a.repeats):
            for workers in (0, 2):
                for name, utts in sources.items():
                    runs.setdefault(f"{name}_{workers}_workers", []).append(
                        read_rate(utts, tok, a.max_batch_duration, workers))
        result["read_decode"] = {k: max(v, key=lambda r: r["utt_per_s"]) for k, v in runs.items()}
        result["index"] = index_cost(written["manifest"])
        result["training_fed"] = fed(sources["shards"], tok, a.max_batch_duration, a.steps, a.rounds, a.hidden,
                                       a.layers)
        result["libraries"] = libraries(written["manifest"], written["utterances"])
    result["host_after"] = host()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
