"""Our real training step, shared by the throughput benchmarks.

`real_batches` loads a manifest the way `asr-train` does (AN4 FLACs preloaded by
`SpeechDataset`, duration-bucketed batches from `DurationBatchSampler`) and
`real_training_step` builds the model's own MFCC front end + SpecAugment + exact-padding
BiLSTM + CTC + AdamW + clipping, returning one callable per optimiser step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from asr.data.dataset import Batch, DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import Utterance, read_manifest
from asr.data.tokenizer import CharTokenizer
from asr.frontend.features import FeatureConfig, SpecAugment
from asr.frontend.stats import build_vocab
from asr.models.acoustic import Recognizer, build_recognizer


def real_batches(manifest: str, max_batch_duration_s: float, num_batches: int, *, seed: int = 0,
                 sort_jitter: float = 0.1) -> tuple[list[Utterance], CharTokenizer, list[list[int]], list[Batch]]:
    """The first ``num_batches`` training batches of ``manifest``, audio preloaded.

    Returns the utterances, the tokenizer built from them, the batch plan (utterance
    indices per batch) and the collated batches.
    """
    utts = read_manifest(manifest)
    tok = build_vocab(utts)
    ds = SpeechDataset(utts, tok, 16000)
    ds.preload()
    sampler = DurationBatchSampler([u.duration_s for u in utts], max_batch_duration_s, seed=seed,
                                   sort_jitter=sort_jitter)
    plan = [b for b, _ in zip(sampler, range(num_batches))]
    return utts, tok, plan, [collate([ds[i] for i in b]) for b in plan]


def real_training_step(vocab_size: int, hidden_size: int = 320, num_layers: int = 4, lr: float = 1e-4,
                       rnn_type: str = "lstm", **model_kwargs) -> tuple[Recognizer, Callable[[Batch], float]]:
    """The reference recognizer in training mode and one ``step(batch) -> loss`` as ``asr-train`` runs it.

    ``model_kwargs``: further :func:`asr.models.acoustic.build_recognizer` settings (``bidirectional``,
    ``chunk_s``, ``right_context_s``, ...).
    """
    model = build_recognizer(FeatureConfig(), vocab_size, spec_augment=SpecAugment(), hidden_size=hidden_size,
                             num_layers=num_layers, rnn_type=rnn_type, **model_kwargs)
    ctc = torch.nn.CTCLoss(reduction="sum")
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()

    def step(b: Batch) -> float:
        lp, lens = model(b.waves, b.wave_lens)
        loss = ctc(lp.transpose(0, 1), b.targets, lens, b.target_lens) / b.target_lens.sum()  # (B, T, V) -> (T, B, V)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return float(loss.detach())

    return model, step
