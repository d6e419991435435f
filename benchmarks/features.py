"""MFCC throughput of our front end vs librosa and Kaldi-compatible torchaudio, with an agreement check.

All three compute 40 MFCC from 40 mel bands, 25 ms windows every 10 ms, on the same
preloaded audio (the AN4 test set by default), on one thread ("per core"):

* ``ours_batched``: ``FeatureExtractor.mfcc`` on duration-sorted padded batches (how training
  and transcription call it);
* ``ours_per_file``: the same, one file at a time;
* ``librosa``: ``librosa.feature.mfcc`` per file (its NumPy/SciPy path);
* ``kaldi``: ``torchaudio.compliance.kaldi.mfcc`` per file (it takes one waveform at a time).

Contenders run alternately, ``--repeats`` rounds, and the median is reported, so machine
noise hits all of them alike.

Agreement: our front end uses librosa's filterbank (Slaney mel scale and norm), a periodic
Hann window, snip-edges framing (``center=False``), ``10 log10(max(power, 1e-10))`` and an
orthonormal DCT-II. librosa configured alike (``center=False``, ``power_to_db(top_db=None)``;
its default ``top_db=80`` clamps quiet frames relative to each file's loudest one, which we
deliberately do not) must agree to ``--tolerance`` dB-scaled MFCC units (max abs difference,
after dropping frames whose mel power hit the 1e-10 floor). Kaldi's MFCC differs by design
(HTK mel, its own log-energy and windowing) and is timed, not compared.

    python benchmarks/features.py --manifest ../shared/data/an4/test.jsonl

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import librosa
import numpy as np
import torch
import torchaudio

from asr.data.audio import load_audio
from asr.data.dataset import make_batches
from asr.data.manifest import read_manifest
from asr.frontend.features import FeatureConfig, FeatureExtractor


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/test.jsonl")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-batch-duration", type=float, default=120.0)
    p.add_argument("--tolerance", type=float, default=1e-2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    cfg = FeatureConfig()
    sr = cfg.sample_rate_hz
    waves = [load_audio(u.audio_path, sr) for u in read_manifest(a.manifest)]
    audio_s = sum(len(w) for w in waves) / sr
    fe = FeatureExtractor(cfg).eval()
    mel_kwargs = dict(sr=sr, n_fft=cfg.fft_length, win_length=cfg.win_length, hop_length=cfg.hop_length,
                      n_mels=cfg.n_mels, fmin=cfg.f_min_hz, center=False, power=2.0)
    times = time_alternately(contenders(fe, cfg, waves, a.max_batch_duration, mel_kwargs), a.repeats)
    speed = {k: audio_s / statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "features", "manifest": a.manifest, "files": len(waves), "audio_seconds": round(audio_s, 1),
        "threads": a.threads, "torch": torch.__version__, "torchaudio": torchaudio.__version__,
        "librosa": librosa.__version__,
        "x_real_time": {k: round(v, 1) for k, v in speed.items()},
        **{f"{ours}_vs_{peer}": round(speed[ours] / speed[peer], 2)
           for peer in ("kaldi", "librosa") for ours in ("ours_batched", "ours_per_file")},
        "agreement_with_librosa": agreement(fe, waves, cfg, mel_kwargs, a.tolerance),
    }
    print(json.dumps(result, indent=2))


def padded_batches(waves: list[np.ndarray], sample_rate_hz: int, max_batch_duration_s: float
                   ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``[(waves (B, S) zero-padded, lengths (B,))]`` over duration-sorted batches, as training builds them."""
    batches = []
    for b in make_batches([len(w) / sample_rate_hz for w in waves], max_batch_duration_s, shuffle=False):
        lens = torch.tensor([len(waves[i]) for i in b])
        x = torch.zeros(len(b), int(lens.max()))
        for k, i in enumerate(b):
            x[k, : len(waves[i])] = torch.from_numpy(waves[i])
        batches.append((x, lens))
    return batches


def contenders(fe: FeatureExtractor, cfg: FeatureConfig, waves: list[np.ndarray], max_batch_duration_s: float,
               mel_kwargs: dict) -> dict:
    """``{name: function computing every file's MFCC once}`` for the four contenders."""
    batches = padded_batches(waves, cfg.sample_rate_hz, max_batch_duration_s)
    singles = [(torch.from_numpy(w)[None], torch.tensor([len(w)])) for w in waves]

    def ours(items):
        with torch.inference_mode():
            for x, lens in items:
                fe.mfcc(x, lens)

    def rosa():
        for w in waves:
            librosa.feature.mfcc(y=w, n_mfcc=cfg.n_mfcc, **mel_kwargs)

    def kaldi():
        with torch.inference_mode():
            for x, _ in singles:
                torchaudio.compliance.kaldi.mfcc(x, num_ceps=cfg.n_mfcc, num_mel_bins=cfg.n_mels,
                                                 frame_length=cfg.win_length_ms, frame_shift=cfg.hop_length_ms,
                                                 sample_frequency=cfg.sample_rate_hz, low_freq=cfg.f_min_hz,
                                                 dither=0.0)

    return {"ours_batched": lambda: ours(batches), "ours_per_file": lambda: ours(singles),
            "librosa": rosa, "kaldi": kaldi}


def time_alternately(runs: dict, repeats: int) -> dict[str, list[float]]:
    """Seconds of each run in each of ``repeats`` rounds, after one untimed warm-up each."""
    for fn in runs.values():  # warm-up: lazy imports, FFT plans, filterbank caches
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def agreement(fe: FeatureExtractor, waves: list[np.ndarray], cfg: FeatureConfig, mel_kwargs: dict,
              tolerance: float) -> dict:
    """Largest and median |ours - librosa| over all frames not at the power floor, librosa configured alike."""
    diffs = []
    for w in waves:
        mel = librosa.feature.melspectrogram(y=w, **mel_kwargs)
        ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=cfg.n_mfcc)
        with torch.inference_mode():
            got, lens = fe.mfcc(torch.from_numpy(w)[None], torch.tensor([len(w)]))
        got = got[0, : int(lens[0])].double().numpy().T  # (n_mfcc, T)
        keep = mel.min(axis=0) > 1e-10  # frames where no band hit the log floor
        n = min(got.shape[1], ref.shape[1])
        diffs.append(np.abs(got[:, :n] - ref[:, :n])[:, keep[:n]].ravel())
    d = np.concatenate(diffs)
    scale = float(np.median(np.abs(np.concatenate([librosa.feature.mfcc(
        S=librosa.power_to_db(librosa.feature.melspectrogram(y=w, **mel_kwargs), top_db=None),
        n_mfcc=cfg.n_mfcc).ravel() for w in waves[:10]]))))
    return {"frames_compared": int(d.size // cfg.n_mfcc), "max_abs_diff": float(d.max()),
            "median_abs_diff": float(np.median(d)), "median_abs_value": scale, "tolerance": tolerance,
            "agrees": bool(d.max() <= tolerance)}


if __name__ == "__main__":
    main()
