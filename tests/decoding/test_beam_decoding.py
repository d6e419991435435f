"""Beam search on hand-built posteriors: equal to greedy where the best path is clear, better where it is not."""

import pytest
import torch

from asr.decoding.ctc import (
    BeamSearchDecoder,
    CudaBeamSearchDecoder,
    GreedyDecoder,
    append_word_boundary,
    build_decoder,
    check_decoder_files,
    decoder_tokens,
    lexicon_from_texts,
    read_lexicon,
    write_lexicon,
)
from asr.inference.metrics import word_errors

VOCAB = ["<blank>", " ", "a", "b", "c", "d"]


def peaked(paths: list[list[int]], vocab_size: int = len(VOCAB), p: float = 0.9) -> torch.Tensor:
    """``(B, T, V)`` log-posteriors putting ``p`` on each path's token and the rest spread evenly."""
    T = max(map(len, paths))
    probs = torch.full((len(paths), T, vocab_size), (1 - p) / (vocab_size - 1))
    for b, path in enumerate(paths):
        for t, k in enumerate(path):
            probs[b, t] = (1 - p) / (vocab_size - 1)
            probs[b, t, k] = p
    return probs.log()


def test_beam_equals_greedy_on_clear_paths():
    paths = [[2, 2, 0, 3, 1, 4, 0, 4, 5],  # "ab cd"... with a blank between the repeated c's: "ab ccd"
             [0, 5, 5, 5, 0, 1, 1, 2, 0],  # "d a"
             [0, 0, 0, 0, 0, 0, 0, 0, 0]]  # nothing
    lp = peaked(paths)
    lengths = torch.tensor([9, 9, 9])
    greedy = GreedyDecoder(VOCAB)(lp, lengths)
    assert greedy == ["ab ccd", "d a", ""]
    assert BeamSearchDecoder(VOCAB, beam_size=8)(lp, lengths) == greedy
    # lengths are honoured: the first utterance cut after 5 frames is "ab "
    assert BeamSearchDecoder(VOCAB)(lp, torch.tensor([5, 9, 1])) == ["ab", "d a", ""]


def test_greedy_text_drops_spaces_at_the_ends_and_doubled():
    paths = [[1, 2, 0, 1, 0, 1, 3, 1]]  # " a  b ": a leading, a doubled and a trailing space
    assert GreedyDecoder(VOCAB)(peaked(paths), torch.tensor([8])) == ["a b"]


def test_beam_sums_paths_that_greedy_cannot():
    # two frames, each 0.6 blank / 0.4 "a": the best path is blank-blank (0.36) -> "", but "a" has
    # three paths (a-, -a, aa) worth 0.64 together; the prefix beam search adds them, greedy cannot
    probs = torch.full((1, 2, len(VOCAB)), 1e-6)
    probs[0, :, 0], probs[0, :, 2] = 0.6, 0.4
    lp, lengths = probs.log(), torch.tensor([2])
    assert GreedyDecoder(VOCAB)(lp, lengths) == [""]
    assert BeamSearchDecoder(VOCAB, log_add=True)(lp, lengths) == ["a"]
    assert BeamSearchDecoder(VOCAB, log_add=False)(lp, lengths) == [""]  # max instead of sum: the best path again
    assert word_errors("a", "a").rate < word_errors("a", "").rate


def test_lexicon_is_built_from_training_words(tmp_path):
    lexicon = lexicon_from_texts(["cab bad", "a cab", "dab"], VOCAB)
    assert lexicon == {"a": ["a", "|"], "bad": ["b", "a", "d", "|"], "cab": ["c", "a", "b", "|"],
                       "dab": ["d", "a", "b", "|"]}
    write_lexicon(tmp_path / "lexicon.txt", lexicon)
    assert (tmp_path / "lexicon.txt").read_text().splitlines()[1] == "bad\tb a d |"
    assert read_lexicon(tmp_path / "lexicon.txt", VOCAB) == lexicon
    with pytest.raises(ValueError, match=r"'cax'.*\['x'\]"):
        lexicon_from_texts(["cax"], VOCAB)
    (tmp_path / "bad.txt").write_text("a\ta |\nbe\tb e |\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: word 'be'.*\['e'\]"):
        read_lexicon(tmp_path / "bad.txt", VOCAB)
    assert decoder_tokens(VOCAB) == ["<blank>", "|", "a", "b", "c", "d"]


def test_lexicon_search_emits_only_lexicon_words(tmp_path):
    write_lexicon(tmp_path / "lexicon.txt", lexicon_from_texts(["cab bad"], VOCAB))
    # the acoustics say "cad bad": "cad" is not a word, the nearest lexicon word is "cab" or "bad"
    lp = peaked([[4, 2, 5, 1, 3, 2, 5]])
    assert GreedyDecoder(VOCAB)(lp, torch.tensor([7])) == ["cad bad"]
    out = BeamSearchDecoder(VOCAB, lexicon=tmp_path / "lexicon.txt")(lp, torch.tensor([7]))[0]
    assert set(out.split()) <= {"cab", "bad"} and len(out.split()) == 2
    # the last word needs no trailing space from the model (a boundary frame is appended)
    lp = peaked([[4, 2, 3, 1, 3, 2, 5]])
    assert BeamSearchDecoder(VOCAB, lexicon=tmp_path / "lexicon.txt")(lp, torch.tensor([7])) == ["cab bad"]


def test_append_word_boundary_adds_one_certain_frame():
    lp = peaked([[2, 3, 0], [2, 0, 0]])
    out, lens = append_word_boundary(lp, torch.tensor([3, 1]), boundary=1)
    assert out.shape == (2, 4, len(VOCAB)) and lens.tolist() == [4, 2]
    assert out[0, 3].argmax() == 1 and out[1, 1].argmax() == 1 and out[0, 3, 1] == 0
    assert torch.equal(out[0, :3], lp[0]) and torch.equal(out[1, 0], lp[1, 0])


def test_build_decoder_names_and_errors(tmp_path):
    assert isinstance(build_decoder("greedy", VOCAB), GreedyDecoder)
    assert isinstance(build_decoder("beam", VOCAB, beam_size=4), BeamSearchDecoder)
    with pytest.raises(ValueError, match="decoder=beam_lm needs decoder.lexicon=.* and decoder.lm="):
        build_decoder("beam_lm", VOCAB, lexicon=None, lm=None)
    write_lexicon(tmp_path / "lexicon.txt", lexicon_from_texts(["cab"], VOCAB))
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        build_decoder("beam_lm", VOCAB, lexicon=tmp_path / "lexicon.txt", lm=tmp_path / "missing.bin")
    with pytest.raises(ValueError, match="unknown decoder 'viterbi'"):
        build_decoder("viterbi", VOCAB)


@pytest.mark.parametrize("name,lexicon,lm,error", [
    ("greedy", None, None, None), ("beam", None, None, None), ("beam", "lex.txt", None, None),
    ("beam_lm", "lex.txt", "lm.bin", None), ("beam_cuda", None, None, None),
    ("beam_lm", "lex.txt", None, "decoder=beam_lm needs"), ("beam_lm", None, "lm.bin", "decoder=beam_lm needs"),
    ("beam_lm", "", "", "decoder=beam_lm needs"),
    ("beam", "lex.txt", "lm.bin", "decoder.lm is set but decoder.name=beam"),
    ("greedy", None, "lm.bin", "decoder.lm is set"),
    ("greedy", "lex.txt", None, "decoder.lexicon is set but decoder.name=greedy"),
    ("beam_cuda", "lex.txt", None, "decoder.lexicon is set but decoder.name=beam_cuda ignores it"),
])
def test_one_rule_for_which_decoder_takes_a_lexicon_and_an_lm(name, lexicon, lm, error):
    if error is None:
        check_decoder_files(name, lexicon, lm)
    else:
        with pytest.raises(ValueError, match=error):
            check_decoder_files(name, lexicon, lm)


def test_beam_search_with_an_lm_but_no_lexicon_is_refused_by_the_same_rule():
    with pytest.raises(ValueError, match="decoder=beam_lm needs decoder.lexicon"):
        BeamSearchDecoder(VOCAB, lm="lm.bin")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_cuda_beam_search_without_a_gpu_says_what_to_use_instead():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU.*use decoder=beam"):
        build_decoder("beam_cuda", VOCAB, beam_size=4)
    from asr.cli.apps import _decoder
    from asr.config.schema import ConfigError, DecoderConfig

    with pytest.raises(ConfigError, match="^decoder=beam_cuda: needs a CUDA GPU") as err:
        _decoder(DecoderConfig(name="beam_cuda"), VOCAB)
    assert str(err.value).count("beam_cuda") == 1  # the CLI names the decoder once


def test_cuda_beam_search_settings_are_checked_and_passed_on():
    from asr.config.schema import ConfigError, DecoderConfig, check_decoder

    d = DecoderConfig(name="beam_cuda", beam_size=6, blank_skip_threshold=0.9, lexicon=None)
    assert d.options() == {"beam_size": 6, "blank_skip_threshold": 0.9}  # none of flashlight's options
    assert "blank_skip_threshold" not in DecoderConfig(name="beam").options()
    with pytest.raises(ConfigError, match="decoder.lexicon is set but decoder.name=beam_cuda"):
        check_decoder(DecoderConfig(name="beam_cuda", lexicon="lexicon.txt"))
    with pytest.raises(ConfigError, match=r"decoder.blank_skip_threshold must be in \[0, 1\], got 1.5"):
        check_decoder(DecoderConfig(name="beam_cuda", blank_skip_threshold=1.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_beam_search_equals_cpu_beam_search_on_clear_paths():
    paths = [[2, 2, 0, 3, 1, 4, 0, 4, 5], [0, 5, 5, 5, 0, 1, 1, 2, 0], [0] * 9]
    lp, lengths = peaked(paths), torch.tensor([9, 9, 9])
    assert CudaBeamSearchDecoder(VOCAB, beam_size=4, blank_skip_threshold=1.0)(lp, lengths) == \
        BeamSearchDecoder(VOCAB, beam_size=4)(lp, lengths) == ["ab ccd", "d a", ""]


# ---- subword pieces ------------------------------------------------------------------------------

PIECE_TEXTS = ["cab a"] * 20 + ["a cab a"] * 5 + ["dab"] * 2 + ["bad cab"] * 3


@pytest.fixture(scope="module")
def bpe():
    from asr.data.tokenizer import PieceTokenizer

    return PieceTokenizer.train(PIECE_TEXTS, "bpe", vocab_size=8)


def piece_frames(tok, text: str) -> list[int]:
    """One frame per piece of ``text``, each followed by a blank frame."""
    return [k for i in tok.encode(text) for k in (i, 0)]


def test_greedy_decoding_of_pieces_gives_words(bpe):
    assert bpe.pieces("cab a") == ["▁", "c", "ab", "▁a"]  # the segmentation the posteriors below spell
    paths = [piece_frames(bpe, "cab a"), piece_frames(bpe, "bad dab"), [0] * 4]
    lp = peaked([p + [0] * (16 - len(p)) for p in paths], vocab_size=len(bpe))
    lengths = torch.tensor([16, 16, 4])
    assert GreedyDecoder(bpe.vocab)(lp, lengths) == ["cab a", "bad dab", ""]
    assert BeamSearchDecoder(bpe.vocab, beam_size=8)(lp, lengths) == ["cab a", "bad dab", ""]


def test_lexicon_of_pieces_and_beam_search_over_it(bpe, tmp_path):
    lexicon = lexicon_from_texts(PIECE_TEXTS, bpe.vocab, bpe.pieces)
    assert lexicon == {"a": ["▁a"], "bad": ["▁", "b", "a", "d"], "cab": ["▁", "c", "ab"], "dab": ["▁", "d", "ab"]}
    write_lexicon(tmp_path / "lexicon.txt", lexicon)
    assert read_lexicon(tmp_path / "lexicon.txt", bpe.vocab) == lexicon  # pieces are the decoder's tokens
    with pytest.raises(ValueError, match=r"'cax' has characters outside the vocabulary"):
        lexicon_from_texts(["cax"], bpe.vocab, bpe.pieces)
    # the acoustics say "cb a": not a word; the lexicon search gives lexicon words only, and no
    # boundary token is needed after the last word (a piece marked ▁ starts each word)
    frames = piece_frames(bpe, "cab a")
    frames[4] = bpe.vocab.index("b")  # "▁ c ab ▁a" -> "▁ c b ▁a"
    lp = peaked([frames], vocab_size=len(bpe))
    assert GreedyDecoder(bpe.vocab)(lp, torch.tensor([len(frames)])) == ["cb a"]
    out = BeamSearchDecoder(bpe.vocab, lexicon=tmp_path / "lexicon.txt")(lp, torch.tensor([len(frames)]))[0]
    assert out.split()[-1] == "a" and set(out.split()) <= set(lexicon)
    clean = peaked([piece_frames(bpe, "bad cab a")], vocab_size=len(bpe))
    n = torch.tensor([clean.shape[1]])
    assert BeamSearchDecoder(bpe.vocab, lexicon=tmp_path / "lexicon.txt")(clean, n) == ["bad cab a"]
