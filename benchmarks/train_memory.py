"""Peak training memory per batch duration, and whether memory grows from epoch to epoch.

For each ``--batch-durations`` value, one fresh process runs the real ``asr.training.train.train``
(the reference 4 x 320 BiLSTM, SpecAugment, AdamW, dev evaluation and checkpoints every
epoch) for ``--epochs`` epochs on the first ``--utterances`` AN4 training utterances, and
records its resident memory after every epoch (``train_log.jsonl`` keeps ``rss_mb`` and
``peak_rss_mb`` per epoch). Growth is the RSS after the last epoch minus after the first.

    python benchmarks/train_memory.py --manifest ../shared/data/an4/train.jsonl

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from asr.config.schema import AugmentConfig, DataConfig, ModelConfig, OptimConfig, Settings, TrainerConfig
from asr.training.train import train
manifest, run_dir, duration, epochs, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5])
s = Settings(data=DataConfig(train_manifest=manifest, dev_manifest=manifest, max_batch_duration_s=duration),
             model=ModelConfig(hidden_size=320, num_layers=4), optim=OptimConfig(), augment=AugmentConfig(),
             trainer=TrainerConfig(max_epochs=epochs, threads=threads, progress=False, tensorboard=False,
                                   device="cpu"))
train(s, run_dir)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--batch-durations", default="30,60,120", help="data.max_batch_duration_s values, comma-separated")
    p.add_argument("--utterances", type=int, default=150)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    lines = [line for line in Path(a.manifest).read_text().splitlines() if line.strip()][: a.utterances]
    base = Path(a.manifest).resolve().parent
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "subset.jsonl"
        with open(subset, "w") as f:
            for line in lines:
                rec = json.loads(line)
                rec["audio_filepath"] = str((base / rec["audio_filepath"]).resolve())
                f.write(json.dumps(rec) + "\n")
        audio_s = sum(json.loads(line)["duration"] for line in lines)
        for duration in [float(d) for d in a.batch_durations.split(",")]:
            run_dir = Path(tmp) / f"run-{duration:g}"
            subprocess.run([sys.executable, "-c", CHILD, str(subset), str(run_dir), str(duration), str(a.epochs),
                            str(a.threads)], check=True, capture_output=True)
            log = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]
            rss = [e["rss_mb"] for e in log]
            results.append({"max_batch_duration_s": duration, "peak_rss_mb": max(e["peak_rss_mb"] for e in log),
                            "rss_mb_per_epoch": rss, "growth_mb_first_to_last_epoch": round(rss[-1] - rss[0], 1),
                            "audio_s_per_s": [round(e["train_audio_s_per_s"], 1) for e in log]})
    print(json.dumps({"benchmark": "train_memory", "model": "4x320 BiLSTM (reference)", "utterances": len(lines),
                      "audio_seconds_per_epoch": round(audio_s, 1), "epochs": a.epochs, "threads": a.threads,
                      "runs": results}, indent=2))


if __name__ == "__main__":
    main()
