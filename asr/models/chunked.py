"""Latency-controlled bidirectional layers (LC-BLSTM; Chen & Huo 2016, Zhang et al. 2016), and streaming steps.

A full bidirectional layer's backward direction starts at the last frame of the utterance, so nothing can be
output before the audio ends. A latency-controlled layer cuts the utterance into chunks of ``C`` frames:

* the **forward** direction runs over the chunks in order and carries its state from one chunk to the next,
  exactly like a unidirectional layer;
* the **backward** direction starts afresh (zero state) at the end of each chunk's *block*: the chunk plus
  ``R`` look-ahead frames after it. Its outputs on the look-ahead frames serve only the layers above in the
  same block and are then discarded; the next chunk computes those frames again as its own.

Every layer of a block sees the same frames, so the whole stack waits for ``C + R`` frames, whatever its
depth. :func:`chunked_layer` computes this for whole padded utterances at once (training and offline
inference: the backward blocks of every chunk in one batched call), :func:`block_step` for one block at a
time with the forward state carried by the caller (streaming). They are two ways to compute the same numbers,
which the tests check.

Shapes use ``B`` utterances, ``T`` frames, ``K = ceil(T / C)`` chunks, ``D`` input and ``H`` output features
per direction.
"""

from __future__ import annotations

import torch
from torch import nn


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its length; padding stays at the end.

    Args:
        x: ``(B, T, F)``; lengths: ``(B,)``.

    Example:
        >>> reverse_padded(torch.tensor([[[1.], [2.], [3.]], [[4.], [5.], [0.]]]), torch.tensor([3, 2]))[..., 0]
        tensor([[3., 2., 1.],
                [5., 4., 0.]])
    """
    b, t = x.shape[:2]
    steps = torch.arange(t, device=x.device)
    rev = lengths.to(x.device)[:, None] - 1 - steps[None, :]  # (B, T)
    idx = torch.where(rev >= 0, rev, steps[None, :])  # padding positions map to themselves
    # whole rows by index_select: several times faster than gather over every feature
    rows = (idx + t * torch.arange(b, device=x.device)[:, None]).reshape(-1)
    return x.reshape(b * t, -1).index_select(0, rows).view_as(x)


State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # a GRU's h, an LSTM's (h, c): each (1, B, size)


def look_ahead_inputs(x: torch.Tensor, chunk: int, right: int) -> torch.Tensor:
    """The first layer's look-ahead inputs: ``rc[b, k, j] = x[b, (k + 1) * chunk + j]`` (zeros past the end).

    Shapes: ``x: (B, T, D)`` → ``(B, K, right, D)``.
    """
    b, t, d = x.shape
    k = (t + chunk - 1) // chunk
    idx = (torch.arange(k, device=x.device)[:, None] + 1) * chunk + torch.arange(right, device=x.device)[None, :]
    padded = nn.functional.pad(x, (0, 0, 0, k * chunk + right - t))  # (B, K*C + R, D): every index exists
    return padded[:, idx]  # (B, K, R, D)


def _stack_states(states: list[State]) -> State:
    """Chunk-end states ``[(1, B, H)] * K`` → ``(1, B * K, H)`` in ``b * K + k`` order (the blocks' order)."""
    if isinstance(states[0], tuple):
        return tuple(_stack_states([s[i] for s in states]) for i in range(2))
    return torch.stack(states, dim=2).flatten(1, 2)


def state_is_output(rnn: nn.Module) -> bool:
    """Whether ``rnn``'s state after a frame is its output there (a GRU's is; an LSTM's cell state is not)."""
    return isinstance(rnn, nn.GRU)


def chunked_layer(layer, x: torch.Tensor, rc: torch.Tensor, lengths: torch.Tensor, chunk: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """One latency-controlled layer over whole padded utterances (see the module docstring).

    Args:
        layer: a :class:`asr.models.acoustic.RecurrentLayer` with a backward direction.
        x: ``(B, T, D)``: every frame's input (the layer below's kept outputs).
        rc: ``(B, K, R, D)``: each chunk's look-ahead inputs (the layer below's outputs *in that block*).
        lengths: ``(B,)`` valid frames; padding only ever follows an utterance's own frames.
        chunk: ``C``, frames per chunk.

    Returns:
        ``(B, T, 2H)`` kept outputs and ``(B, K, R, 2H)`` look-ahead outputs for the layer above.
    """
    b, t, d = x.shape
    k, r = rc.shape[1], rc.shape[2]
    chunks = nn.functional.pad(x, (0, 0, 0, k * chunk - t)).view(b, k, chunk, d)  # (B, K, C, D)
    if state_is_output(layer.forward_rnn):
        # the forward state runs on from chunk to chunk, and a GRU's state is its output: one call over all the
        # chunks in order gives the same outputs, and each chunk's end state is its last output row (fewer
        # calls, and no loop over the length, which an ONNX trace could not follow)
        fwd = layer.forward_rnn(chunks.flatten(1, 2))[0].view(b, k, chunk, -1)  # (B, K, C, H)
        ends = fwd[:, :, -1].reshape(1, b * k, -1)  # (1, B*K, H) in b * K + k order
    else:  # an LSTM's cell state is not among its outputs: carry it chunk by chunk
        outs, states, state = [], [], None
        for i in range(k):
            out, state = layer.forward_rnn(chunks[:, i], state)
            outs.append(out)
            states.append(state)
        fwd = torch.stack(outs, dim=1)  # (B, K, C, H)
        ends = _stack_states(states)
    blocks = torch.cat([chunks, rc], dim=2).flatten(0, 1)  # (B*K, C+R, D)
    if r:
        fwd_rc, _ = layer.forward_rnn(rc.flatten(0, 1), ends)  # from each chunk's end state
        fwd_rc = fwd_rc.view(b, k, r, -1)
    else:
        fwd_rc = fwd.new_zeros(b, k, 0, fwd.shape[-1])
    starts = torch.arange(k, device=lengths.device) * chunk
    block_lens = (lengths[:, None] - starts[None, :]).clamp(0, chunk + r).flatten()  # (B*K,): 0 for padding
    back, _ = layer.backward_rnn(reverse_padded(blocks, block_lens))  # each block from a zero state
    back = reverse_padded(back, block_lens).view(b, k, chunk + r, -1)
    kept = torch.cat([fwd, back[:, :, :chunk]], dim=-1).flatten(1, 2)[:, :t]  # (B, T, 2H)
    return kept, torch.cat([fwd_rc, back[:, :, chunk:]], dim=-1)


def block_step(layer, x: torch.Tensor, lengths: torch.Tensor, chunk: int, state: State | None
               ) -> tuple[torch.Tensor, State]:
    """One block of one layer, for streaming: ``chunk`` frames to keep, then look-ahead frames.

    A unidirectional layer is the case ``chunk = T`` (no look-ahead, no backward direction).

    Args:
        x: ``(B, L, D)`` the block's inputs, ``L <= chunk + R``.
        lengths: ``(B,)`` valid frames of each block (a stream's last block may be shorter).
        state: the forward direction's state at the end of the previous chunk (None: the stream's start).

    Returns:
        ``(B, L, H * directions)`` outputs of every frame of the block, and the forward state at the end of its
        chunk (meaningful for blocks whose chunk part is complete).
    """
    c = min(chunk, x.shape[1])
    fwd, new_state = layer.forward_rnn(x[:, :c], state)
    if x.shape[1] > c:  # look-ahead frames: forward outputs from the chunk's end state, which is not kept
        fwd = torch.cat([fwd, layer.forward_rnn(x[:, c:], new_state)[0]], dim=1)
    if layer.backward_rnn is None:
        return fwd, new_state
    back, _ = layer.backward_rnn(reverse_padded(x, lengths))
    return torch.cat([fwd, reverse_padded(back, lengths)], dim=-1), new_state
