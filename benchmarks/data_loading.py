"""Training from disk (``data.preload=false``) against preloaded audio: throughput and peak memory.

Each configuration runs in a fresh process that builds the training loader exactly as ``asr-train`` does
(:func:`asr.training.inputs.load_training_data`: manifests read and filtered, the recipe's augmentation,
duration-bucketed batches, ``data.num_workers`` decoding processes) and trains the recipe's 3 x 256
BiGRU on its first ``--steps`` batches. Throughput is the audio seconds of the steps after the first
two over their wall time, waiting for data included, so a loader that cannot keep the model fed shows
up here. Memory is the peak RSS of the training process and of its largest decoding worker (their
sum counts shared pages twice, so both are given).

* ``preload``: every file decoded once into memory (int16) before training, no workers (the default).
* ``disk``: ``data.preload=false data.num_workers=W``: workers decode and augment while the model trains.
* ``disk_4x``: the same with the manifest repeated four times (new ids, the same files), so the
  corpus is 4x larger and the steps are the same kind of batches: memory must not follow the corpus.

    python benchmarks/data_loading.py --kaldi ../shared/data/speechocean762/train --root ../shared/data/speechocean762

``--manifest M.jsonl`` takes a manifest instead of importing a Kaldi directory. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hostinfo import host  # noqa: E402 - benchmarks/ is on sys.path when run as a script


def _hwm_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def _children() -> list[int]:
    pids = []
    for task in Path("/proc/self/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def child(manifest: str, preload: bool, workers: int, steps: int, threads: int, max_batch_s: float) -> dict:
    """One configuration, in this process: load as asr-train does, train ``steps`` batches, time and measure."""
    import torch
    from training_step import real_training_step  # benchmarks/ is on sys.path when run as a script

    from asr.config.schema import AugmentConfig, DataConfig, ModelConfig, Settings, TrainerConfig
    from asr.training import distributed
    from asr.training.inputs import load_training_data

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    s = Settings(data=DataConfig(train_manifest=manifest, dev_manifest=manifest, max_batch_duration_s=max_batch_s,
                                 preload=preload, num_workers=workers, validate=False),
                 model=ModelConfig(rnn_type="gru", hidden_size=256, num_layers=3),
                 augment=AugmentConfig(), trainer=TrainerConfig(threads=threads, progress=False, tensorboard=False,
                                                                device="cpu"))
    t0 = time.perf_counter()
    data = load_training_data(s, distributed.World(), torch.device("cpu"))
    data.sampler.set_epoch(0)
    ready_s = time.perf_counter() - t0
    _, step = real_training_step(len(data.tokenizer), 256, 3, rnn_type="gru")
    audio, busy = 0.0, 0.0
    it = iter(data.loader)
    t = time.perf_counter()
    for k in range(steps):
        batch = next(it)
        step(batch)
        now = time.perf_counter()
        if k >= 2:  # the first steps pay for worker start-up and the allocator's warm-up
            audio += float(batch.wave_lens.sum()) / s.features.sample_rate_hz
            busy += now - t
        t = now
    workers_mb = [_hwm_mb(p) for p in _children()]
    return {"utterances": len(data.train_utts), "ready_s": round(ready_s, 1),
            "audio_s_per_s": round(audio / busy, 2), "timed_steps": steps - 2,
            "peak_rss_mb": round(_hwm_mb(), 1), "worker_peak_rss_mb": round(max(workers_mb, default=0.0), 1)}


def repeat_manifest(src: Path, dst: Path, times: int) -> None:
    """``src`` ``times`` over in ``dst``: new ids, the same files (paths made absolute, so ``dst`` may be anywhere)."""
    lines = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    with dst.open("w") as f:
        for k in range(times):
            for rec in lines:
                rec = dict(rec, audio_filepath=str((src.parent / rec["audio_filepath"]).resolve()))
                rec["id"] = f"{rec.get('id', rec['audio_filepath'])}#copy{k}"
                f.write(json.dumps(rec) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kaldi", help="a Kaldi data directory to import (text, wav.scp, utt2spk)")
    p.add_argument("--root", help="what the Kaldi directory's relative audio paths are relative to")
    p.add_argument("--manifest", help="a JSONL manifest instead of --kaldi")
    p.add_argument("--steps", type=int, default=30, help="training steps per configuration (the first 2 untimed)")
    p.add_argument("--workers", type=int, default=1, help="data.num_workers of the disk configurations")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the model")
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=2, help="alternate the configurations this many times")
    p.add_argument("--child", nargs=4, metavar=("MANIFEST", "PRELOAD", "WORKERS", "STEPS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        m, pre, w, n = a.child
        print(json.dumps(child(m, pre == "1", int(w), int(n), a.threads, a.max_batch_duration)))
        return
    if bool(a.kaldi) == bool(a.manifest):
        p.error("give one of --kaldi DIR or --manifest FILE")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = Path(a.manifest) if a.manifest else tmp / "corpus.jsonl"
        if a.kaldi:
            from asr.corpora.kaldi import prepare_kaldi

            prepare_kaldi(a.kaldi, manifest, root=a.root)
        repeat_manifest(manifest, tmp / "corpus_4x.jsonl", 4)
        configs = {"preload": (manifest, 1, 0), "disk": (manifest, 0, a.workers),
                   "disk_4x": (tmp / "corpus_4x.jsonl", 0, a.workers)}
        runs: dict[str, list[dict]] = {name: [] for name in configs}
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                            os.environ.get("PYTHONPATH", "")]))
        for _ in range(a.rounds):
            for name, (m, pre, w) in configs.items():
                cmd = [sys.executable, __file__, "--threads", str(a.threads), "--max-batch-duration",
                       str(a.max_batch_duration), "--child", str(m), str(pre), str(w), str(a.steps)]
                r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
                if r.returncode:
                    sys.exit(f"{name} failed:\n{r.stderr[-3000:]}")
                runs[name].append(json.loads(r.stdout.strip().splitlines()[-1]))
    best = {name: max(rs, key=lambda r: r["audio_s_per_s"]) for name, rs in runs.items()}
    rss = {name: min(r["peak_rss_mb"] for r in rs) for name, rs in runs.items()}
    print(json.dumps({
        **host(), "threads": a.threads, "workers": a.workers, "steps": a.steps,
        "runs": runs,
        "disk_throughput_vs_preload": round(best["disk"]["audio_s_per_s"] / best["preload"]["audio_s_per_s"], 3),
        "disk_4x_peak_rss_vs_1x": round(rss["disk_4x"] / rss["disk"], 3),
        "preload_peak_rss_vs_disk": round(rss["preload"] / rss["disk"], 3),
    }, indent=1))




if __name__ == "__main__":
    main()
