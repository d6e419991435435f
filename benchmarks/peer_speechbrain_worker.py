"""The SpeechBrain side of `peer_speechbrain.py`; runs inside the peer venv, never imports `asr`.

A SpeechBrain training setup for the reference model: `DynamicItemDataset` over the
manifest (audio read with soundfile in a dynamic item), `PaddedBatch` collation, its
`MFCC` front end (40 coefficients, 40 mel bands, no deltas), `InputNormalization`,
`SpectrogramDrop` time and frequency masking, `ContextWindow` stacking of 3 frames
followed by keeping every 3rd stacked frame, `nnet.RNN.LSTM` 4 x 320 bidirectional,
`nnet.linear.Linear` to the vocabulary, log-softmax, `nnet.losses.ctc_loss`, AdamW, and
`Brain.fit` with its default gradient clipping at norm 5.

One `Brain.fit` call spans the whole run, so optimiser state and oneDNN kernels persist
as in a real training run: each "epoch" is one timed round over the same batches, and
the epoch counter blocks on stdin between rounds so that the parent can time our side
while this process sits idle. Steps are timed from `on_fit_batch_start` to
`on_fit_batch_end` (forward, loss, backward, clipping, optimiser step); loading and
collating batches is outside the timed span, as on our side.

Protocol: prints ``PEER {json}`` lines on stdout: one when warmed up, then one per
``go`` line read from stdin; any other line (or EOF) ends the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import soundfile
import speechbrain as sb
import torch
from speechbrain.augment.freq_domain import SpectrogramDrop
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.lobes.features import MFCC
from speechbrain.nnet.activations import Softmax
from speechbrain.nnet.linear import Linear
from speechbrain.nnet.losses import ctc_loss
from speechbrain.nnet.RNN import LSTM
from speechbrain.processing.features import ContextWindow, InputNormalization


def say(**fields) -> None:
    print("PEER " + json.dumps(fields), flush=True)


class CTCBrain(sb.Brain):
    """BiLSTM-CTC on MFCCs; ``hparams.packed`` passes lengths to the LSTM (exact, packed sequences)."""

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig  # (B, S), relative lengths (B,)
        feats = self.modules.mfcc(wavs)  # (B, T, 40)
        feats = self.modules.normalize(feats, wav_lens)
        if stage == sb.Stage.TRAIN:
            feats = self.hparams.time_drop(self.hparams.freq_drop(feats))
        feats = self.modules.context(feats)[:, :: self.hparams.subsample]  # (B, T, 120) -> (B, ceil(T/3), 120)
        x, _ = self.modules.lstm(feats, lengths=wav_lens if self.hparams.packed else None)  # (B, T', 640)
        return self.hparams.log_softmax(self.modules.out(x)), wav_lens  # (B, T', V)

    def compute_objectives(self, predictions, batch, stage):
        log_probs, lens = predictions
        tokens, token_lens = batch.tokens
        return ctc_loss(log_probs, tokens, lens, token_lens, blank_index=0)

    def on_stage_start(self, stage, epoch=None):
        self.timed_s, self.audio_s, self.steps_done = 0.0, 0.0, 0

    def on_fit_batch_start(self, batch, should_step):
        self._t0 = time.perf_counter()

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        self.timed_s += time.perf_counter() - self._t0
        self.audio_s += float(sum(batch.duration))
        self.steps_done += 1


class Plan:
    """Batch sampler whose batches the epoch counter switches: warm-up batch first, then the timed ones."""

    def __init__(self, warmup: list[list[int]], timed: list[list[int]]):
        self.warmup, self.timed, self.current = warmup, timed, warmup

    def __iter__(self):
        return iter(self.current)

    def __len__(self) -> int:
        return len(self.current)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", required=True, help="JSON from peer_speechbrain.py: data, vocab, plan, model sizes")
    p.add_argument("--packed", action="store_true")
    a = p.parse_args()
    spec = json.loads(open(a.spec, encoding="utf-8").read())
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    plan = Plan(spec["plan"][:1], spec["plan"][1:])
    loader = torch.utils.data.DataLoader(dataset(spec), batch_sampler=plan, collate_fn=PaddedBatch)
    brain = build_brain(spec, a.packed)
    params = sum(p.numel() for p in brain.modules.parameters())  # before fit, as SpeechBrain built them
    brain.fit(rounds(brain, plan, params), train_set=loader, progressbar=False)


def dataset(spec: dict) -> DynamicItemDataset:
    """The manifest as SpeechBrain's dataset: audio read with soundfile, text as our tokenizer's ids."""
    index = {c: i for i, c in enumerate(spec["vocab"])}
    data = DynamicItemDataset(spec["data"])  # {utt_id: {"wav", "duration", "text"}}, SpeechBrain's JSON layout

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        samples, _ = soundfile.read(wav, dtype="float32")  # torchaudio.load needs TorchCodec here
        return torch.from_numpy(samples)

    @sb.utils.data_pipeline.takes("text")
    @sb.utils.data_pipeline.provides("tokens")
    def text_pipeline(text):
        return torch.LongTensor([index[c] for c in text])  # the same ids as our tokenizer

    data.add_dynamic_item(audio_pipeline)
    data.add_dynamic_item(text_pipeline)
    data.set_output_keys(["id", "sig", "tokens", "duration"])
    return data


def build_brain(spec: dict, packed: bool) -> CTCBrain:
    """The reference model as SpeechBrain modules, with AdamW, clipping at norm 5 and fp32 on the CPU."""
    m = spec["model"]
    stack = m["stack"]
    modules = {
        "mfcc": MFCC(deltas=False, context=False, n_mfcc=m["n_mfcc"], n_mels=m["n_mels"], f_min=m["f_min_hz"],
                     n_fft=400, win_length=25, hop_length=10, sample_rate=16000),
        "normalize": InputNormalization(norm_type="global"),
        "context": ContextWindow(left_frames=0, right_frames=stack - 1),
        "lstm": LSTM(hidden_size=m["hidden"], input_shape=[None, None, m["n_mfcc"] * stack],
                     num_layers=m["layers"], bidirectional=True, dropout=m["dropout"]),
        "out": Linear(input_size=2 * m["hidden"], n_neurons=len(spec["vocab"])),
    }
    hparams = {
        "subsample": stack, "packed": packed, "log_softmax": Softmax(apply_log=True),
        "time_drop": SpectrogramDrop(drop_length_low=0, drop_length_high=20, drop_count_low=2, drop_count_high=2,
                                     dim=1),
        "freq_drop": SpectrogramDrop(drop_length_low=0, drop_length_high=8, drop_count_low=2, drop_count_high=2,
                                     dim=2),
    }
    return CTCBrain(modules=modules, hparams=hparams, opt_class=lambda params: torch.optim.AdamW(params, lr=1e-4),
                    run_opts={"device": "cpu", "max_grad_norm": 5.0, "precision": "fp32"})


def rounds(brain: CTCBrain, plan: Plan, parameters: int):
    """The epoch counter of ``Brain.fit``: the warm-up epoch, then one timed epoch per ``go`` line on stdin."""
    yield 0  # warm-up epoch: the first batch only
    say(ready=True, parameters=parameters, warmup_s=brain.timed_s, speechbrain=sb.__version__,
        torch=torch.__version__, torch_file=torch.__file__, threads=torch.get_num_threads())
    plan.current = plan.timed
    epoch = 0
    for line in sys.stdin:
        if line.strip() != "go":
            return
        epoch += 1
        yield epoch
        say(steps=brain.steps_done, seconds=brain.timed_s, audio_seconds=brain.audio_s)


if __name__ == "__main__":
    main()
