"""Load on ``asr serve``: N clients stream manifest files at real speed over loopback; latency, CPU, errors.

The server is started as its own process (``asr serve ... port=0``), so its CPU time is its own. For each N in
``--clients``, N clients each stream ``--files`` utterances of the manifest one after another (client k starts
at utterance k * files, so the clients hear different speakers), paced at ``--speed`` times real time, in
``--piece-s`` messages. Reported per N:

* ``final_latency_ms``: from the moment the last audio of a stream was sent to its final result (p50/p95/p99);
* ``word_latency_ms``: from the moment the end of a word's audio was sent to the final result holding it;
* ``word_shown_latency_ms``: from the same moment to the first result, partial or final, that showed the word
  as it ends up (what a reader of live captions waits for);
* ``real_time_held``: every stream ended without error and its final result came within ``--held-s`` of
  its last audio (a server that falls behind real time piles audio up, and latency grows past it);
* ``server_cpu_cores``: the server's CPU seconds per wall second while the clients stream;
* ``engine``: forward passes and chunk blocks the server ran (blocks per pass = how much batching there was);
* ``wer``: of the streamed final transcripts against the manifest.

A full-context model is served too (one final result per stream, after its audio), so its rows say what
waiting for the whole utterance costs through the same server.

Bounded: at most ``--max-level-s`` seconds of streaming per N (a level that would take longer is cut at
that, and says so) and ``--max-clients`` clients. Prints one JSON object.

    python benchmarks/serve_load.py --model exp/lc/model.pt --manifest recipes/an4/exp/data/test.jsonl \\
        --clients 1,4,8,16 --files 4 --threads 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.inference.evaluate import Hypothesis, score
from asr.inference.stream_client import stream_audio


def percentiles_ms(values: list[float]) -> dict | None:
    """p50 / p95 / p99 / max of seconds, in milliseconds (None when there are none)."""
    if not values:
        return None
    q = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return {"p50": round(float(q[0]), 1), "p95": round(float(q[1]), 1), "p99": round(float(q[2]), 1),
            "max": round(max(values) * 1000, 1), "n": len(values)}


def start_server(model: str, threads: int, max_streams: int, extra: list[str]) -> tuple[subprocess.Popen, int]:
    """``asr serve`` on a free loopback port; returns the process and the port once it listens."""
    cmd = [sys.executable, "-m", "asr", "serve", f"model={model}", "port=0", f"threads={threads}",
           f"limits.max_streams={max_streams}", "limits.idle_timeout_s=60", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"asr serve did not start: {line}{proc.stderr.read()[-3000:]}")
    return proc, int(found.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
        return json.loads(r.read())


def shown_latencies(r) -> list[float]:
    """Per final word: from the send of its last audio to the first result (partial or final) that showed it.

    A partial shows word ``i`` when its first ``i + 1`` words are the final's.
    """
    out, shown = [], []  # shown: (segment, words, when) of every result in arrival order
    for event, when in zip(r.events, r.received_at):
        if event.get("type") in ("partial", "final"):
            shown.append((event["segment"], event["text"].split(), when))
        if event.get("type") != "final":
            continue
        final_words = [w["word"] for w in event["words"]]
        for i, w in enumerate(event["words"]):
            sent = r.sent_by(w["end"])
            first = next(t for seg, words, t in shown
                         if seg == event["segment"] and words[:i + 1] == final_words[:i + 1])
            if sent is not None:
                out.append(first - sent)
    return out


async def client(url: str, clips: list[tuple[str, np.ndarray]], speed: float, piece_s: float,
                 deadline: float, rate: int) -> list[dict]:
    """One client streaming its clips in turn; one row per stream (latencies in seconds, text, error)."""
    rows = []
    for utt_id, samples in clips:
        if time.monotonic() + len(samples) / rate / max(speed, 1e-9) > deadline:
            break  # the level's time budget is spent
        try:
            r = await stream_audio(url, samples, rate, speed=speed, piece_s=piece_s, timeout_s=30.0)
        except (OSError, asyncio.TimeoutError) as err:
            rows.append({"id": utt_id, "error": f"{type(err).__name__}: {err}"})
            continue
        final, finals_at = r.final, dict(zip(map(id, r.events), r.received_at))
        if final is None or r.error:
            rows.append({"id": utt_id, "error": (r.error or {}).get("message", f"no final (close {r.close_code})")})
            continue
        words = [finals_at[id(e)] - r.sent_by(w["end"]) for e in r.finals for w in e["words"]
                 if r.sent_by(w["end"]) is not None]  # each word: until the final result (segment) holding it
        rows.append({"id": utt_id, "final_s": finals_at[id(final)] - r.sent[-1][1], "word_s": words,
                     "word_shown_s": shown_latencies(r), "text": r.text})
    return rows


def run_level(port: int, pid: int, n: int, clips: list[tuple[str, np.ndarray]], refs: dict, args) -> dict:
    """N clients at once; the level's latencies, CPU use, batching, errors and WER."""
    per_client = [[clips[(k * args.files + i) % len(clips)] for i in range(args.files)] for k in range(n)]
    before, cpu0, t0 = health(port)["engine"], cpu_seconds(pid), time.monotonic()
    url = f"ws://127.0.0.1:{port}/stream"

    async def all_clients():
        deadline = time.monotonic() + args.max_level_s
        return await asyncio.gather(*(client(url, c, args.speed, args.piece_s, deadline, args.rate)
                                      for c in per_client))

    rows = [r for rs in asyncio.run(all_clients()) for r in rs]
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    after = health(port)["engine"]
    ok = [r for r in rows if "error" not in r]
    finals = [r["final_s"] for r in ok]
    hyps = [Hypothesis(r["id"], r["text"], None) for r in ok]
    scores = score([refs[r["id"]] for r in ok], hyps)[0] if ok else {}
    passes, blocks = after["passes"] - before["passes"], after["blocks"] - before["blocks"]
    lengths = {utt_id: len(samples) / args.rate for utt_id, samples in clips}
    return {"clients": n, "streams": len(rows), "audio_s": round(sum(lengths[r["id"]] for r in ok), 1),
            "real_time_held": bool(ok) and len(ok) == len(rows) and max(finals) <= args.held_s,
            "final_latency_ms": percentiles_ms(finals),
            "word_latency_ms": percentiles_ms([w for r in ok for w in r["word_s"]]),
            "word_shown_latency_ms": percentiles_ms([w for r in ok for w in r["word_shown_s"]]),
            "server_cpu_cores": round(cpu / wall, 2), "wall_s": round(wall, 1),
            "engine": {"passes": passes, "blocks": blocks, "blocks_per_pass": round(blocks / passes, 2) if passes
                       else None},
            "errors": len(rows) - len(ok), "error_examples": [r["error"] for r in rows if "error" in r][:3],
            "wer": round(scores["wer"], 4) if scores else None,
            "cut_by_time_budget": len(rows) < n * args.files}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a model file (a full-context one gives one final per stream)")
    p.add_argument("--manifest", required=True, help="JSONL manifest (e.g. recipes/an4/exp/data/test.jsonl)")
    p.add_argument("--clients", default="1,4,8,16", help="comma-separated N")
    p.add_argument("--files", type=int, default=4, help="utterances each client streams, one after another")
    p.add_argument("--speed", type=float, default=1.0, help="1: real time")
    p.add_argument("--piece-s", type=float, default=0.1, help="audio per message")
    p.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    p.add_argument("--held-s", type=float, default=1.0, help="final latency above this: real time not held")
    p.add_argument("--max-level-s", type=float, default=120.0, help="streaming time budget per N")
    p.add_argument("--max-clients", type=int, default=128)
    p.add_argument("--server-arg", action="append", default=[], help="extra asr serve setting (key=value)")
    args = p.parse_args()
    levels = [int(n) for n in args.clients.split(",")]
    if not levels or min(levels) < 1 or max(levels) > args.max_clients:
        p.error(f"--clients must be between 1 and --max-clients ({args.max_clients})")
    utts = read_manifest(args.manifest)
    proc, port = start_server(args.model, args.threads, max(levels), args.server_arg)
    try:
        info = health(port)
        args.rate = info["sample_rate"]
        clips = [(u.utt_id, load_audio(u.audio_path, args.rate)) for u in utts[:max(levels) * args.files]]
        refs = {u.utt_id: u for u in utts}
        out = {"model": str(Path(args.model).resolve()), "manifest": str(Path(args.manifest).resolve()),
               "cpu_count": os.cpu_count(), "server_threads": args.threads, "speed": args.speed,
               "piece_s": args.piece_s, **{k: info[k] for k in ("chunk_s", "right_context_s", "algorithmic_latency_s")},
               "levels": [run_level(port, proc.pid, n, clips, refs, args) for n in levels]}
    finally:
        proc.terminate()
        proc.wait(60)
    held = [lv["clients"] for lv in out["levels"] if lv["real_time_held"]]
    out["largest_n_holding_real_time"] = max(held) if held else 0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
