"""The pure-tensor ceiling: random features straight into the model + CTC loss + AdamW step.

No audio, no front end, no data pipeline: what the recurrent stack itself costs on this
machine. `train_throughput.py` compares the real training step against it in the same run.

    python benchmarks/ceiling.py --threads 2 --batch 32 --seconds 3.0

Prints one JSON object (audio-seconds per wall-second for training and inference).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def reference_rnn(hidden: int, layers: int, input_dim: int, vocab: int, *, rnn_type: str = "lstm",
                  bidirectional: bool = True, proj_size: int = 0) -> torch.nn.Module:
    """A fused ``torch.nn.LSTM``/``GRU`` stack (both directions in one kernel call) + dense + log-softmax."""
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[rnn_type]
    extra = {"proj_size": proj_size} if proj_size else {}
    out_size = (proj_size or hidden) * (2 if bidirectional else 1)

    class Ref(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn_cls(input_dim, hidden, layers, batch_first=True, bidirectional=bidirectional, **extra)
            self.out = torch.nn.Linear(out_size, vocab)

        def forward(self, x):
            return torch.log_softmax(self.out(self.rnn(x)[0]), dim=-1)
    return Ref()


def reference_lstm(hidden: int, layers: int, input_dim: int, vocab: int) -> torch.nn.Module:
    """The bidirectional LSTM ceiling the training benchmarks use (:func:`reference_rnn` with its defaults)."""
    return reference_rnn(hidden, layers, input_dim, vocab)


def measure(model, batch: int, frames: int, input_dim: int, vocab: int, steps: int, train: bool,
            device: torch.device, frame_shift_s: float) -> float:
    """Audio-seconds per second over ``steps`` timed steps (after one warm-up step)."""
    x = torch.randn(batch, frames, input_dim, device=device)
    lens = torch.full((batch,), frames, dtype=torch.long)
    target_len = frames // 3
    targets = torch.randint(1, vocab, (batch, target_len), device=device)
    tlens = torch.full((batch,), target_len, dtype=torch.long)
    ctc = torch.nn.CTCLoss(reduction="sum")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train(train)

    def step():
        if train:
            lp = model(x)
            loss = ctc(lp.transpose(0, 1), targets, lens, tlens) / tlens.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        else:
            with torch.inference_mode():
                model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * frames * frame_shift_s * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0, help="utterance length")
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    frame_shift_s, input_dim, vocab = 0.03, 120, 29
    frames = int(a.seconds / frame_shift_s)
    model = reference_lstm(a.hidden, a.layers, input_dim, vocab).to(device)
    result = {
        "benchmark": "ceiling", "device": str(device), "threads": a.threads, "batch": a.batch,
        "utterance_s": a.seconds, "model": f"{a.layers}x{a.hidden} BiLSTM, 40 MFCC x3 stacked, {vocab} outputs",
        "parameters": sum(q.numel() for q in model.parameters()),
        "train_audio_s_per_s": measure(model, a.batch, frames, input_dim, vocab, a.steps, True, device, frame_shift_s),
        "infer_audio_s_per_s": measure(model, a.batch, frames, input_dim, vocab, a.steps, False, device,
                                       frame_shift_s),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
