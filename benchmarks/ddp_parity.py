"""DDP parity: does 2-process data-parallel training reach single-process dev WER at the same global batch?

Trains a BiLSTM (``--layers`` × ``--hidden-size``) twice on the same corpus, vocabulary,
statistics, seed and schedule: once in one process with batches of ``--batch-s`` padded
audio seconds, once under ``torchrun --nproc-per-node=2`` (gloo) with ``--batch-s / 2`` per
rank. Both plan the same global batches and the two ranks split each one, so both runs take
the same optimizer steps on the same utterances (a one-utterance batch, which two ranks
cannot share, waits for another epoch). Every process gets ``--threads``. The runs still
cannot match bit for bit (each rank draws its own dropout and SpecAugment masks, and sums
gradients in another order), so the question is whether the dev WERs agree within
``--tolerance`` (absolute). Prints one JSON object.

    python benchmarks/ddp_parity.py                      # synthesizes a small embedded corpus (offline)
    python benchmarks/ddp_parity.py --corpus DIR         # DIR/train.jsonl and DIR/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"error: {' '.join(cmd[:6])} ... failed (exit {done.returncode}); see {log}")
    return time.perf_counter() - t0


def result(run_dir: Path, wall_s: float) -> dict:
    summary = json.loads((run_dir / "train_summary.json").read_text())
    history = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return {"best_dev_wer": round(summary["best_dev_wer"], 4), "best_epoch": summary["best_epoch"],
            "final_dev_wer": round(history[-1]["dev_wer"], 4), "final_train_loss": round(history[-1]["train_loss"], 4),
            "steps": history[-1]["step"], "dev_wer_per_epoch": [round(h["dev_wer"], 4) for h in history],
            "wall_minutes": round(wall_s / 60, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, help="folder with train.jsonl and dev.jsonl (default: synthesize one)")
    p.add_argument("--out", type=Path, default=Path("exp/ddp_parity"))
    p.add_argument("--num-train", type=int, default=600)
    p.add_argument("--num-dev", type=int, default=100)
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--batch-s", type=float, default=12.0, help="global batch: padded audio seconds per step")
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (both runs)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--tolerance", type=float, default=0.03, help="allowed |WER difference| (absolute)")
    args = p.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    corpus = args.corpus.resolve() if args.corpus else out / "data"
    if not args.corpus and not (corpus / "dev.jsonl").is_file():
        run([py, "-m", "asr.corpora.synthetic", "--out", str(corpus), "--num-train", str(args.num_train),
             "--num-dev", str(args.num_dev), "--num-test", "1"], out / "synthesize.log")
    train, dev = corpus / "train.jsonl", corpus / "dev.jsonl"
    run([py, "-m", "asr", "stats", f"data.train_manifest={train}", f"output_dir={out / 'lang'}",
         f"hydra.run.dir={out / 'stats'}"], out / "stats.log")
    half = args.batch_s / 2
    common = ["data=synthetic", f"data.train_manifest={train}", f"data.dev_manifest={dev}",
              f"data.vocab={out / 'lang/vocab.json'}", f"data.stats={out / 'lang/stats.pt'}",
              f"data.max_duration_s={half}",  # both runs keep the same utterances
              "model=small", f"model.hidden_size={args.hidden_size}", f"model.num_layers={args.layers}",
              f"trainer.max_epochs={args.epochs}", f"trainer.threads={args.threads}", f"trainer.seed={args.seed}",
              "trainer.device=cpu", "trainer.progress=false", "trainer.tensorboard=false",
              "optim.warmup_steps=100", "optim.lr=2e-3"]
    single_s = run([py, "-m", "asr", "train", *common, f"data.max_batch_duration_s={args.batch_s}",
                    f"hydra.run.dir={out / 'single'}"], out / "single.log")
    ddp_s = run([py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "asr", "train",
                 *common, f"data.max_batch_duration_s={half}", f"hydra.run.dir={out / 'ddp'}"],
                out / "ddp.log")
    lines = [json.loads(line) for line in train.read_text().splitlines() if line.strip()]
    single, ddp = result(out / "single", single_s), result(out / "ddp", ddp_s)
    diff = ddp["best_dev_wer"] - single["best_dev_wer"]
    print(json.dumps({
        "corpus": {"train_utterances": len(lines), "train_hours": round(sum(r["duration"] for r in lines) / 3600, 3),
                   "dev": str(dev)},
        "model": f"{args.layers} x {args.hidden_size} BiLSTM", "global_batch_s": args.batch_s, "epochs": args.epochs,
        "seed": args.seed, "threads_per_process": args.threads,
        "single_process": {"max_batch_duration_s": args.batch_s, **single},
        "ddp_2_ranks": {"max_batch_duration_s_per_rank": half, **ddp},
        "best_dev_wer_difference": round(diff, 4), "tolerance": args.tolerance,
        "within_tolerance": abs(diff) <= args.tolerance,
    }, indent=2))


if __name__ == "__main__":
    main()
