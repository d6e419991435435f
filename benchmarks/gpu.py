"""GPU: the real training step and inference against the cuDNN ceiling, at several batch sizes.

One command for a lent GPU machine (about 2-4 minutes):

    python benchmarks/gpu.py --batches 32,128,512
    python benchmarks/gpu.py --recipe librispeech_100h     # the LibriSpeech recipe's model (RESULTS.md's cost)
    python benchmarks/gpu.py --device cpu --steps 2 --batches 2 --seconds 2   # a smoke test without a GPU

For each batch size B, with B utterances of ``--seconds`` seconds (AN4 audio tiled to that
length when ``--manifest`` exists, else noise — the speed does not depend on the content):

* ``real_train``: our ``Recognizer`` (MFCC front end on the GPU, exact-padding BiLSTM,
  dense + log-softmax) + CTC + AdamW + clipping, i.e. one ``asr-train`` step; with ``--recipe``
  the recipe's size, output count (blank + BPE pieces), dropout and SpecAugment;
* ``ceiling_train``: random features of the same shape into a fused bidirectional
  ``torch.nn.LSTM`` (cuDNN) of the same size + CTC + AdamW;
* ``real_infer`` / ``ceiling_infer``: the same forward passes under ``inference_mode``.

TF32 matmuls are on: the model trains in fp32, and for a cuDNN LSTM of this size fp32 with
TF32 is faster than bf16/fp16 autocast. Contenders alternate; the median step time is used.
Prints one JSON object with audio-seconds per second and real/ceiling ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import reference_lstm  # noqa: E402

from asr.data.audio import load_audio  # noqa: E402
from asr.data.manifest import read_manifest  # noqa: E402
from asr.frontend.features import FeatureConfig, SpecAugment  # noqa: E402
from asr.models.acoustic import build_recognizer  # noqa: E402

# recipes/librispeech/settings.sh per SIZE: (hidden, layers, outputs = blank + data.vocab_size pieces, dropout)
RECIPES = {"librispeech_100h": (512, 5, 257, 0.2), "librispeech_960h": (640, 5, 513, 0.15)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,128,512")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--vocab", type=int, default=29, help="outputs, blank included (29: English characters)")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="a recipe's model instead of --hidden/--layers/--vocab")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--device", default="cuda")
    a = p.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU (--device cpu runs it on the CPU, for a quick check)")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = FeatureConfig()
    hidden, layers, vocab, dropout = RECIPES[a.recipe] if a.recipe else (a.hidden, a.layers, a.vocab, 0.0)
    samples = int(a.seconds * cfg.sample_rate_hz)
    source = _audio(a.manifest, cfg.sample_rate_hz, samples)
    real = build_recognizer(cfg, vocab, hidden_size=hidden, num_layers=layers, dropout=dropout,
                            spec_augment=SpecAugment() if a.recipe else None).to(dev)
    ceil = reference_lstm(hidden, layers, cfg.output_dim, vocab).to(dev)
    opts = {"real": torch.optim.AdamW(real.parameters(), lr=1e-4), "ceiling": torch.optim.AdamW(ceil.parameters())}
    results = []
    for batch in [int(b) for b in a.batches.split(",")]:
        waves = source[torch.randint(0, len(source), (batch,))].to(dev)
        seconds = _measure(real, ceil, opts, waves, vocab, a.steps, dev)
        audio = batch * a.seconds
        row = {"batch": batch, **{f"{k}_audio_s_per_s": round(audio / t, 1) for k, t in seconds.items()}}
        row["train_real_over_ceiling"] = round(row["real_train_audio_s_per_s"] / row["ceiling_train_audio_s_per_s"], 3)
        row["infer_real_over_ceiling"] = round(row["real_infer_audio_s_per_s"] / row["ceiling_infer_audio_s_per_s"], 3)
        if dev.type == "cuda":
            row["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            torch.cuda.reset_peak_memory_stats()
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(json.dumps({"benchmark": "gpu", "device": name, "torch": torch.__version__, "recipe": a.recipe,
                      "threads": torch.get_num_threads() if dev.type == "cpu" else None,
                      "model": f"{layers}x{hidden} BiLSTM, 40 MFCC x3 stacked, {vocab} outputs",
                      "utterance_s": a.seconds, "audio": "AN4 (tiled)" if source.std() > 0 else "noise",
                      "runs": results}, indent=2))


def _measure(real, ceil, opts: dict, waves: torch.Tensor, vocab: int, steps: int, dev: torch.device) -> dict:
    """Median seconds per training step and per inference pass, real model and ceiling, alternating."""
    batch = len(waves)
    wave_lens = torch.full((batch,), waves.shape[1], device=dev)
    frames = real.features.output_lengths(wave_lens)
    feats = torch.randn(batch, int(frames.max()), real.features.config.output_dim, device=dev)
    target_len = int(frames[0]) // 3
    targets = torch.randint(1, vocab, (batch, target_len), device=dev)
    target_lens = torch.full((batch,), target_len, device=dev)
    ctc = torch.nn.CTCLoss(reduction="sum", zero_infinity=True)

    def forward(name: str):
        return real(waves, wave_lens) if name == "real" else (ceil(feats), frames)

    def train_step(name: str) -> None:
        lp, lens = forward(name)
        loss = ctc(lp.transpose(0, 1), targets, lens, target_lens) / target_lens.sum()
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(real.parameters() if name == "real" else ceil.parameters(), 5.0)
        opts[name].step()

    def infer_step(name: str) -> None:
        with torch.inference_mode():
            forward(name)

    real.train()
    ceil.train()
    train = _time({n: (lambda n=n: train_step(n)) for n in ("real", "ceiling")}, steps, dev)
    real.eval()
    ceil.eval()
    infer = _time({n: (lambda n=n: infer_step(n)) for n in ("real", "ceiling")}, steps, dev)
    return {**{f"{n}_train": t for n, t in train.items()}, **{f"{n}_infer": t for n, t in infer.items()}}


def _audio(manifest: str, sample_rate: int, samples: int) -> torch.Tensor:
    """Up to 64 utterance-length waveforms: AN4 audio tiled to ``samples``, or noise without it."""
    if Path(manifest).is_file():
        waves = [load_audio(u.audio_path, sample_rate) for u in read_manifest(manifest)[:64]]
        return torch.from_numpy(np.stack([np.resize(w, samples) for w in waves]))
    return 0.1 * torch.randn(64, samples)


def _time(steps: dict, repeats: int, dev: torch.device) -> dict[str, float]:
    """Median seconds per step of each contender, alternating, after one warm-up each."""
    times: dict[str, list[float]] = {n: [] for n in steps}
    for fn in steps.values():
        fn()
    for _ in range(repeats):
        for name, fn in steps.items():
            _sync(dev)
            t0 = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
