"""CTC forced alignment: the best frame path that spells a given transcript."""

import torch

from asr.decoding.alignment import blank_runs, force_align, words_from_path
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


def test_words_from_a_path_over_subword_pieces():
    # pieces: a word starts at a piece marked "▁"; a lone "▁" is only a boundary; <unk> counts as blank
    vocab = ["<blank>", "<unk>", "▁", "▁the", "▁c", "at", "s", "d"]
    path = [3, 3, 0, 4, 0, 5, 5, 0, 2, 1, 7, 0, 5]  # "▁the" "▁c" "at" "▁" <unk> "d" "at"
    post = [0.9, 0.7, 1.0, 0.8, 1.0, 0.6, 0.6, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0]
    words = words_from_path(path, post, vocab, frame_shift_s=0.5)
    assert [(w.text, w.start_s, w.end_s) for w in words] == [("the", 0.0, 1.0), ("cat", 1.5, 3.5),
                                                              ("dat", 5.0, 6.5)]
    assert [round(w.confidence, 3) for w in words] == [0.8, round((0.8 + 0.6 + 0.6) / 3, 3), 0.75]
    # the words read as the greedy transcript of the same path
    from asr.decoding.ctc import GreedyDecoder

    lp = torch.full((1, len(path), len(vocab)), -10.0)
    lp[0, torch.arange(len(path)), torch.tensor(path)] = 0.0
    assert GreedyDecoder(vocab)(lp, torch.tensor([len(path)])) == [" ".join(w.text for w in words)]


def test_blank_runs_split_quiet_frames_inside_words_from_those_between_them():
    chars = ["<blank>", " ", "a", "b"]
    # "ab" with 3 blanks inside, then 2 blanks + a space + 1 blank before "b", trailing blanks not counted
    path = [0, 0, 2, 0, 0, 0, 3, 0, 0, 1, 0, 3, 0, 0, 0, 0]
    assert blank_runs(path, chars) == ([3], [4])
    assert blank_runs([0, 2, 2, 3, 0], chars) == ([], [])  # no quiet run between two symbols
    pieces = ["<blank>", "<unk>", "▁a", "b", "▁c"]
    # pieces: a run before a word-starting piece is between words, one before a continuation inside
    assert blank_runs([2, 0, 3, 0, 0, 4, 0], pieces) == ([1], [2])
    # on any path, every word after the first is preceded by exactly one between-words run
    gen = torch.Generator().manual_seed(1)
    path = torch.randint(0, 4, (300,), generator=gen).tolist()
    words = words_from_path(path, [1.0] * len(path), chars, frame_shift_s=0.03)
    inside, between = blank_runs(path, chars)
    assert len(between) == len(words) - 1
    assert sum(inside) + sum(between) <= path.count(0) + path.count(1)
