"""Tokenizers: characters, and sentencepiece BPE / unigram pieces that round-trip text exactly."""

import pytest

from asr.data.tokenizer import BLANK, UNK_PIECE, CharTokenizer, PieceTokenizer, is_piece_vocab, join_symbols

SENTENCES = ["the cat sat on the mat", "a dog and a cat", "the quick brown fox jumps over the lazy dog",
             "hello world again", "it's a dog's life"]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_a_tiny_piece_tokenizer_round_trips_text_exactly(kind):
    tok = PieceTokenizer.train(SENTENCES * 3, kind, vocab_size=34)
    assert len(tok) == 35 and tok.vocab[:2] == [BLANK, UNK_PIECE] and is_piece_vocab(tok.vocab)
    for text in [*SENTENCES, "a  cat", " the dog ", "god's lazy fox"]:  # unseen words and spacing too
        ids = tok.encode(text)
        assert min(ids) >= 2  # neither the blank nor <unk>
        assert tok.decode(ids) == text
    # pieces join into words at their word-start marks; the ids are those pieces shifted by the blank
    pieces = tok.pieces("the cat")
    assert "".join(pieces).replace("\u2581", " ").strip() == "the cat"
    assert [tok.vocab[i] for i in tok.encode("the cat")] == pieces
    assert join_symbols(tok.vocab, tok.encode("the  cat")) == "the cat"  # whitespace collapsed


def test_bpe_merges_frequent_pairs_into_longer_pieces():
    tok = PieceTokenizer.train(SENTENCES * 3, "bpe", vocab_size=40)
    assert len(tok.encode("the cat")) < len("the cat")  # fewer targets than characters
    assert sum(len(p) > 1 for p in tok.vocab[2:]) >= 5


def test_text_the_pieces_cannot_spell_is_refused_naming_the_characters():
    tok = PieceTokenizer.train(SENTENCES, "bpe", vocab_size=40)
    assert tok.unknown_chars("the émeu!") == {"é", "!"}
    assert tok.unknown_chars("the cat") == set()
    with pytest.raises(ValueError, match=r"\[.!., .é.\] are not in the vocabulary"):
        tok.encode("the émeu!")


def test_a_vocabulary_size_sentencepiece_cannot_train_is_a_clear_error():
    with pytest.raises(ValueError, match=r"data.vocab_size=5000: .*bpe.*Vocabulary size too high"):
        PieceTokenizer.train(SENTENCES, "bpe", vocab_size=5000)
    with pytest.raises(ValueError, match=r"data.vocab_size=5: .*smaller than required_chars"):
        PieceTokenizer.train(SENTENCES, "unigram", vocab_size=5)


def test_garbage_or_mislabelled_models_are_refused():
    tok = PieceTokenizer.train(SENTENCES, "bpe", vocab_size=40)
    assert PieceTokenizer(tok.model_proto, "bpe").vocab == tok.vocab
    with pytest.raises(ValueError, match="not a sentencepiece model"):
        PieceTokenizer(b"\x00garbage\xff" * 10, "bpe")
    with pytest.raises(ValueError, match="of type bpe, not unigram"):
        PieceTokenizer(tok.model_proto, "unigram")
    with pytest.raises(ValueError, match="kind must be one of bpe, unigram"):
        PieceTokenizer(tok.model_proto, "char")


def test_character_vocabularies_join_exactly_as_before():
    tok = CharTokenizer.build(["no yes"])
    assert not is_piece_vocab(tok.vocab)
    # spaces kept as they are: the decoders collapse them, as they always did
    assert join_symbols(tok.vocab, [1, *tok.encode("no  yes ")]) == " no  yes "
    assert join_symbols(tok.vocab, [0, 3, 0]) == tok.decode([0, 3, 0]) == "n"
