import torch

from asr.data.tokenizer import CharTokenizer
from asr.decoding.ctc import greedy_decode
from asr.inference.metrics import alignment_text, char_errors, word_errors


def test_greedy_decode_hand_built_2x7x8():
    # frame-wise argmax paths; blank = 0
    paths = [[0, 1, 1, 0, 2, 2, 3],  # -> 1 2 3
             [4, 4, 0, 4, 7, 0, 0]]  # -> 4 4 7 (a blank separates the repeated 4s)
    log_probs = torch.full((2, 7, 8), -10.0)
    for b, path in enumerate(paths):
        for t, k in enumerate(path):
            log_probs[b, t, k] = -0.1
    assert greedy_decode(log_probs, torch.tensor([7, 7])) == [[1, 2, 3], [4, 4, 7]]
    # lengths cut the second sequence after frame 4: 4 4 0 4 -> 4 4
    assert greedy_decode(log_probs, torch.tensor([7, 4])) == [[1, 2, 3], [4, 4]]
    assert greedy_decode(log_probs, torch.tensor([0, 1])) == [[], [4]]


def test_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.build(["hello world", "yes"])
    assert tok.vocab[0] == "<blank>" and len(tok) == 1 + len(set("hello worldyes"))
    assert tok.decode(tok.encode("yes hello")) == "yes hello"
    try:
        tok.encode("xyz")
    except ValueError as err:
        assert "'x'" in str(err) and "'z'" in str(err)
    else:
        raise AssertionError("unknown characters must raise")


def test_word_and_char_error_counts():
    w = word_errors("the cat sat on the mat", "the cat sit on mat")
    assert (w.substitutions, w.deletions, w.insertions, w.hits) == (1, 1, 0, 4)
    assert abs(w.rate - 2 / 6) < 1e-12
    c = char_errors("abc", "abd")
    assert (c.substitutions, c.ref_len) == (1, 3)
    assert char_errors("a b", "ab").deletions == 1  # spaces count as characters
    assert word_errors("", "").rate == 0 and word_errors("", "x y").insertions == 2
    assert word_errors("a b", "").deletions == 2


def test_alignment_text_marks_errors():
    text = alignment_text("a b c d", "a x c d e")
    ref, hyp, marks = text.splitlines()
    assert ref.startswith("REF: a b c d") and hyp.startswith("HYP: a x c d e")
    assert marks.split() == ["S", "I"]
