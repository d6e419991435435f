"""CTC decoding. Greedy best-path decoding is a pure function on a tensor."""

from __future__ import annotations

import torch


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path CTC decoding: argmax per frame, merge repeats, drop blanks.

    Args:
        log_probs: ``(B, T, V)`` frame log-posteriors (any monotone scores work).
        lengths: ``(B,)`` valid frames per utterance.
        blank: index of the CTC blank.

    Returns:
        One list of token ids per utterance.

    Example:
        >>> lp = torch.log(torch.tensor([[[.1, .9], [.1, .9], [.9, .1], [.1, .9]]]))
        >>> greedy_decode(lp, torch.tensor([4]))
        [[1, 1]]
    """
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    out = []
    for seq, n in zip(best, lengths.tolist()):
        seq = seq[:n]
        if n == 0:
            out.append([])
            continue
        # keep a frame if it differs from the previous frame and is not blank
        changed = torch.ones_like(seq, dtype=torch.bool)
        changed[1:] = seq[1:] != seq[:-1]
        out.append(seq[changed & (seq != blank)].tolist())
    return out
