"""Peer comparison: the reference model trained by SpeechBrain and by us, same data and steps, one run.

Our side is `training_step.py` (what `asr-train` runs per step). The SpeechBrain side is
`peer_speechbrain_worker.py`, run in a separate venv that this script creates on first
use (``benchmarks/.peer-venv``): SpeechBrain is a benchmark here, not a dependency. That
venv reuses the project's own torch and torchaudio through a ``.pth`` file pointing at the
site-packages they live in, so both sides run the same torch build; ``pip`` installs
``speechbrain`` under a constraints file pinning torch/torchaudio to the installed
versions, and the script then checks that the peer imports the project's torch. Nothing
is downloaded from a model hub (``HF_HUB_OFFLINE=1``; nothing pretrained is used).

Both sides train on the same batches (our duration-bucketed plan, given to SpeechBrain
as its batch sampler), warm up on the first, then time ``--steps`` optimiser steps per
round, alternating over ``--rounds`` rounds with the same thread count. SpeechBrain's
LSTM gets padded input, as its CRDNN recipes call the RNN; with ``--packed`` a second
SpeechBrain run passes lengths to its LSTM, which packs the sequences (exact per
utterance, as our model is, and slower on CPU).

    python benchmarks/peer_speechbrain.py --manifest ../shared/data/an4/train.jsonl --steps 12 --rounds 2

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from training_step import real_batches, real_training_step  # benchmarks/ is on sys.path when run as a script

from asr.frontend.features import FeatureConfig
from asr.models.acoustic import num_parameters

HERE = Path(__file__).resolve().parent
HIDDEN, LAYERS = 320, 4  # the reference model: 4-layer BiLSTM, 320 units per direction

# What the two sides share and where they part, for the JSON (checked against the code of both sides).
MATCHED = [
    "manifest, utterances and batches: our duration-bucketed plan is SpeechBrain's batch sampler",
    "warm-up: one step on the first batch, then the same timed steps in each round",
    "audio-seconds counted from the manifest durations of each batch",
    "label ids: our character vocabulary (blank 0), 29 classes on AN4",
    "MFCC: 40 coefficients from 40 mel bands, 25 ms / 10 ms frames, 400-point FFT, f_min 20 Hz, no deltas",
    "stacking: 3 consecutive frames concatenated (120 features), every 3rd kept (30 ms LSTM steps)",
    "4-layer bidirectional LSTM, 320 units per direction, dropout 0.2, Linear 640 -> 29, log-softmax",
    "CTC loss (torch's, blank 0), AdamW lr 1e-4, gradient clipping at norm 5, fp32, same torch build and threads",
    "time and frequency masking on the features, 2 masks each, up to 20 frames / 8 coefficients wide",
]
DIFFERS = [
    "front end: ours is torchaudio MelSpectrogram (hann window, snip-edges framing, slaney mel) + ortho DCT; "
    "SpeechBrain's MFCC is its STFT (hamming window, centred frames) + HTK-mel Filterbank (top_db 80) + DCT",
    "normalisation: ours applies fixed mean/std buffers; SpeechBrain's InputNormalization(global) "
    "updates running statistics every training step",
    "stacking: ours unfolds frames with edge replication; SpeechBrain's ContextWindow(0, 2) is a grouped conv1d "
    "over every frame, then [:, ::3] keeps every 3rd",
    "BiLSTM: ours runs a torch.nn.LSTM per direction per layer and reverses each utterance inside its length, "
    "exact for every utterance; SpeechBrain's LSTM is one cuDNN-style torch.nn.LSTM(num_layers=4), "
    "either on padded input (the backward direction sees pad frames) or packed (exact)",
    "dropout: ours after every layer including the last; SpeechBrain's between LSTM layers only",
    "loss normalisation: ours sums CTC over the batch / target tokens; SpeechBrain's ctc_loss averages per "
    "utterance over target lengths (same cost)",
    "masking: ours (SpecAugment) also caps a time mask at 20 % of the utterance; SpeechBrain's SpectrogramDrop "
    "draws widths over the padded batch",
    "step loop: ours calls the step directly; SpeechBrain runs Brain.fit (its hooks, loss averaging, "
    "nonfinite check) and loads each batch through DynamicItemDataset (untimed on both sides)",
]


def peer_python(venv: Path, speechbrain_version: str) -> Path:
    """The peer venv's interpreter, creating the venv and installing SpeechBrain if missing."""
    python = venv / "bin" / "python"
    project_site = Path(torch.__file__).resolve().parents[1]  # the site-packages holding our torch
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        site = next((venv / "lib").glob("python*/site-packages"))
        # a .pth line, not --system-site-packages: the project's torch lives in a venv, not the system
        (site / "project_torch.pth").write_text(f"{project_site}\n")
    if subprocess.run([str(python), "-c", "import speechbrain"], capture_output=True).returncode:
        pins = venv / "constraints.txt"
        pins.write_text("".join(f"{d}=={importlib.metadata.version(d)}\n" for d in ("torch", "torchaudio")))
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        "-c", str(pins), f"speechbrain=={speechbrain_version}"], check=True, stdout=sys.stderr)
    out = subprocess.run([str(python), "-c", "import torch, torchaudio; print(torch.__file__, torchaudio.__file__)"],
                         capture_output=True, text=True, check=True).stdout.split()
    if not all(Path(f).resolve().is_relative_to(project_site) for f in out):
        sys.exit(f"peer venv {venv} imports {out}, not the project's torch under {project_site}: "
                 "pip replaced it; delete the venv and rerun")
    return python


class Peer:
    """One SpeechBrain worker process: warmed up at start, then one timed round per :meth:`round`."""

    def __init__(self, python: Path, spec_path: str, packed: bool, log_path: str):
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH="")
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [str(python), str(HERE / "peer_speechbrain_worker.py"), "--spec", spec_path] + ["--packed"] * packed,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.info = self._read()
        print(f"{'packed' if packed else 'padded'} SpeechBrain worker ready: {self.info}", file=sys.stderr, flush=True)

    def _read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("PEER "):
                return json.loads(line[5:])
        self.log.flush()
        sys.exit(f"SpeechBrain worker exited ({self.proc.wait()}); its log:\n{Path(self.log.name).read_text()}")

    def round(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=12, help="timed steps per round (after one warm-up step)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--peer-venv", type=Path, default=HERE / ".peer-venv")
    p.add_argument("--speechbrain", default="1.1.2", help="SpeechBrain version installed in the peer venv")
    p.add_argument("--packed", action="store_true",
                   help="also time SpeechBrain with lengths passed to its LSTM (packed, exact; slow on CPU)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    python = peer_python(a.peer_venv, a.speechbrain)
    load_start = os.getloadavg()[0]  # other jobs on the machine slow both sides; the JSON says how busy it was

    utts, tok, plan, batches = real_batches(a.manifest, a.max_batch_duration, a.steps + 1)
    model, step = real_training_step(len(tok), HIDDEN, LAYERS)
    spec = peer_spec(a.threads, utts, tok, plan, dropout=model.acoustic.dropout.p)
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = os.path.join(tmp, "spec.json")
        Path(spec_path).write_text(json.dumps(spec))
        peers = {f"speechbrain_{kind}": Peer(python, spec_path, kind == "packed", os.path.join(tmp, f"{kind}.log"))
                 for kind in ["padded", "packed"][: 1 + a.packed]}
        step(batches[0])  # warm-up, as the peers did
        timed = batches[1:]
        results = alternate_rounds({"asr": lambda: time_steps(step, timed), **{k: v.round for k, v in peers.items()}},
                                   a.rounds)
        for peer in peers.values():
            peer.close()

    audio = {k: sum(x["audio_seconds"] for x in v) for k, v in results.items()}
    if max(audio.values()) - min(audio.values()) > 1e-6 * max(audio.values()):
        sys.exit(f"the two sides trained on different audio: {audio}")
    speed = {k: audio[k] / sum(x["seconds"] for x in v) for k, v in results.items()}
    info = peers["speechbrain_padded"].info
    print(json.dumps({
        "benchmark": "peer_speechbrain", "threads": a.threads, "rounds": a.rounds, "steps_per_round": a.steps,
        "manifest": a.manifest, "max_batch_duration_s": a.max_batch_duration,
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]}, "cpus": os.cpu_count(),
        "mean_batch_size": sum(len(b.utt_ids) for b in timed) / len(timed),
        "audio_s_per_round": audio["asr"] / a.rounds,
        "audio_s_per_s": speed,
        "per_round_audio_s_per_s": {k: [x["audio_seconds"] / x["seconds"] for x in v] for k, v in results.items()},
        **{f"asr_over_{k}": speed["asr"] / speed[k] for k in peers},
        "parameters": {"asr": num_parameters(model), **{k: v.info["parameters"] for k, v in peers.items()}},
        "matched": MATCHED, "differs": DIFFERS,
        "versions": {"torch": torch.__version__, "speechbrain": info["speechbrain"],
                     "peer_torch": info["torch"], "peer_torch_file": info["torch_file"],
                     "python": sys.version.split()[0]},
    }))


def peer_spec(threads: int, utts, tok, plan: list[list[int]], *, dropout: float) -> dict:
    """What the SpeechBrain worker needs to train the same model on the same batches (its ``--spec`` JSON)."""
    cfg = FeatureConfig()
    return {
        "threads": threads, "vocab": list(tok.vocab), "plan": plan,
        "data": {u.utt_id: {"wav": u.audio_path, "duration": u.duration_s, "text": u.text} for u in utts},
        "model": {"n_mfcc": cfg.n_mfcc, "n_mels": cfg.n_mels, "f_min_hz": cfg.f_min_hz, "stack": cfg.stack,
                  "hidden": HIDDEN, "layers": LAYERS, "dropout": dropout},
    }


def time_steps(step, batches: list) -> dict:
    """One round of our side: a timed training step per batch."""
    t = 0.0
    for b in batches:
        t0 = time.perf_counter()
        step(b)
        t += time.perf_counter() - t0
    return {"steps": len(batches), "seconds": t, "audio_seconds": sum(b.audio_seconds for b in batches)}


def alternate_rounds(runs: dict, rounds: int) -> dict[str, list[dict]]:
    """Every run once per round, in reverse order every other round, so that neither side always goes first."""
    order = list(runs)
    results: dict[str, list[dict]] = {k: [] for k in runs}
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            results[name].append(runs[name]())
            print(f"round {r + 1}: {name} {results[name][-1]}", file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    main()
