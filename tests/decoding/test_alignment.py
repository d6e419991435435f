"""CTC forced alignment: the best frame path that spells a given transcript."""

import torch

from asr.decoding.alignment import force_align, words_from_path
from asr.decoding.ctc import greedy_decode


def test_force_align_hand_built_posteriors():
    # frames: "a" strong, blank, then "b" in the last two; vocab blank, a, b
    lp = torch.log(torch.tensor([[.1, .8, .1], [.6, .2, .2], [.1, .1, .8], [.1, .3, .6]]))
    assert force_align(lp, [1, 2]) == [1, 0, 2, 2]
    assert force_align(lp, [1, 1]) == [1, 0, 1, 1]  # a repeat needs the blank between its copies
    assert force_align(lp, [2, 2, 2]) is None  # needs 5 frames
    assert force_align(lp, []) == [0, 0, 0, 0]


def test_force_align_of_the_greedy_transcript_is_the_greedy_path_when_it_is_unambiguous():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 5, generator=gen) * 4
    lp = logits.log_softmax(-1)
    greedy = lp.argmax(-1)
    targets = greedy_decode(lp[None], torch.tensor([40]))[0]
    path = force_align(lp, targets)
    # the greedy path is the best of all paths, so it is also the best one that spells its own collapse
    assert path == greedy.tolist()
    vocab = ["<blank>", " ", "a", "b", "c"]
    words = words_from_path(path, lp.exp().gather(1, torch.tensor(path)[:, None]).squeeze(1).tolist(), vocab,
                            frame_shift_s=0.03)
    assert all(0 < w.confidence <= 1 for w in words)
