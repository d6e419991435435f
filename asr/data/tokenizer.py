"""Tokenizers for CTC: index 0 is the blank, then one index per character or per subword piece.

:class:`CharTokenizer` (the default) gives one id per character; :class:`PieceTokenizer`
gives sentencepiece BPE or unigram pieces, whose ``▁`` marks the start of a word. Both
offer ``vocab``, ``encode``, ``decode`` and ``unknown_chars``, so the training loop and the
decoders do not need to know which one they hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

BLANK = "<blank>"


class CharTokenizer:
    """Maps text to character ids and back; id 0 is the CTC blank.

    Example:
        >>> tok = CharTokenizer.build(["yes", "no yes"])
        >>> tok.vocab
        ['<blank>', ' ', 'e', 'n', 'o', 's', 'y']
        >>> tok.decode(tok.encode("no yes"))
        'no yes'
    """

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if not vocab or vocab[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}, got {vocab[:3]!r}")
        bad = [c for c in vocab[1:] if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries after the blank must be single characters, got {bad[:5]!r}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate entries")
        self.vocab = vocab
        self._index = {c: i for i, c in enumerate(vocab)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharTokenizer:
        """Vocabulary = blank + the sorted set of characters in ``texts``."""
        chars = sorted({c for t in texts for c in t})
        return cls([BLANK, *chars])

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown_chars(self, text: str) -> set[str]:
        """The characters of ``text`` outside the vocabulary (empty when it can be encoded)."""
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list[int]:
        """Text → ids; raises ``ValueError`` naming characters outside the vocabulary."""
        try:
            return [self._index[c] for c in text]
        except KeyError:
            raise ValueError(f"characters {sorted(self.unknown_chars(text))!r} are not in the vocabulary "
                             f"(text {text!r})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids → text (blanks dropped, no CTC collapsing: see :mod:`asr.decoding.ctc`)."""
        return "".join(self.vocab[i] for i in ids if i != 0)


# ---- subword pieces (sentencepiece) -------------------------------------------------------------

WORD_START = "\u2581"  # "▁": sentencepiece's mark on a piece that begins a word (the space before it)
UNK_PIECE = "<unk>"  # sentencepiece's piece 0; never a training target (encode refuses text it would need)
PIECE_KINDS = ("bpe", "unigram")
TOKENIZERS = ("char", *PIECE_KINDS)  # the choices of data.tokenizer


def is_piece_vocab(vocab: Sequence[str]) -> bool:
    """True for a :class:`PieceTokenizer` vocabulary (``<unk>`` follows the blank); a character vocabulary
    holds only single characters after the blank, so the two never meet."""
    return len(vocab) > 1 and vocab[1] == UNK_PIECE


def join_symbols(vocab: Sequence[str], ids: Iterable[int]) -> str:
    """The text a decoded id sequence spells, blanks dropped (no CTC collapsing).

    Characters are joined as they are (what a character model always gave); pieces are
    joined with ``▁`` read as a space, ``<unk>`` dropped and words separated by one space.

    Example:
        >>> join_symbols(["<blank>", "<unk>", "▁the", "▁c", "at"], [2, 3, 0, 4])
        'the cat'
    """
    if not is_piece_vocab(vocab):
        return "".join(vocab[i] for i in ids if i != 0)
    return " ".join("".join(vocab[i] for i in ids if i > 1).replace(WORD_START, " ").split())


class PieceTokenizer:
    """Sentencepiece subword units (BPE or unigram) for CTC: id 0 is the blank, id ``k + 1`` is piece ``k``.

    Piece 0 is sentencepiece's ``<unk>`` (id 1 here); the model is trained with full
    character coverage and identity normalisation, so every training transcript encodes
    without it and ``decode(encode(text)) == text`` exactly. Text with a character the
    pieces do not cover is refused by :meth:`encode`, as :class:`CharTokenizer` refuses it.

    Args:
        model_proto: a serialized sentencepiece model (what :meth:`train` writes, ``*.model`` files).
        kind: ``"bpe"`` or ``"unigram"``; it must be the model's own type.

    Raises:
        ValueError: the bytes are not a sentencepiece model, of another type, or without ``<unk>`` first.

    Example:
        >>> tok = PieceTokenizer.train(["the cat sat", "the mat"] * 4, "bpe", vocab_size=14)
        >>> tok.decode(tok.encode("the cat"))
        'the cat'
    """

    def __init__(self, model_proto: bytes, kind: str):
        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2

        if kind not in PIECE_KINDS:
            raise ValueError(f"tokenizer kind must be one of {', '.join(PIECE_KINDS)}, got {kind!r}")
        model_proto = bytes(model_proto)
        try:
            proto = sentencepiece_model_pb2.ModelProto.FromString(model_proto)
            sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        except Exception as err:  # noqa: BLE001 - protobuf's DecodeError or sentencepiece's RuntimeError
            raise ValueError(f"not a sentencepiece model ({type(err).__name__}: {str(err).strip()[:120]})") from None
        found = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type).lower()
        if found != kind:
            raise ValueError(f"the sentencepiece model is of type {found}, not {kind}")
        if sp.get_piece_size() < 2 or sp.unk_id() != 0 or sp.id_to_piece(0) != UNK_PIECE:
            raise ValueError(f"the sentencepiece model must have {UNK_PIECE!r} as its piece 0")
        self.kind = kind
        self.model_proto = model_proto
        self._sp = sp
        self.vocab = [BLANK, *(sp.id_to_piece(i) for i in range(sp.get_piece_size()))]
        self._known: dict[str, bool] = {}

    @classmethod
    def train(cls, texts: Iterable[str], kind: str = "bpe", vocab_size: int = 256) -> PieceTokenizer:
        """Train a sentencepiece model of ``vocab_size`` pieces (``<unk>`` included) on ``texts``.

        Deterministic (one thread): the same transcripts always give the same pieces, so DDP
        ranks that each train one agree.

        Raises:
            ValueError: naming ``data.vocab_size`` when the text is too small for that many pieces,
                or too varied for so few.
        """
        import io

        import sentencepiece

        if kind not in PIECE_KINDS:
            raise ValueError(f"data.tokenizer: {kind!r} is not one of {', '.join(PIECE_KINDS)}")
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise ValueError("no transcripts to train a tokenizer on")
        model = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=model, model_type=kind, vocab_size=vocab_size,
                character_coverage=1.0,  # every character of the training text gets a piece: no <unk> targets
                normalization_rule_name="identity", remove_extra_whitespaces=False,  # decode(encode(t)) == t
                bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,  # CTC needs no sentence marks
                num_threads=1, minloglevel=2)
        except RuntimeError as err:
            why = str(err).split("] ", 1)[-1].split(" Increase vocab_size")[0].strip()
            raise ValueError(f"data.vocab_size={vocab_size}: sentencepiece cannot train a {kind} tokenizer of that "
                             f"size on {len(texts)} transcripts: {why}") from None
        return cls(model.getvalue(), kind)

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown_chars(self, text: str) -> set[str]:
        """The characters of ``text`` no piece covers (empty when it can be encoded)."""
        for c in set(text) - self._known.keys():
            self._known[c] = c == " " or 0 not in self._sp.encode(c)
        return {c for c in text if not self._known[c]}

    def encode(self, text: str) -> list[int]:
        """Text → piece ids (sentencepiece's segmentation, shifted by one for the blank).

        Raises:
            ValueError: naming characters no piece covers.
        """
        ids = self._sp.encode(text)
        if 0 in ids:
            raise ValueError(f"characters {sorted(self.unknown_chars(text))!r} are not in the vocabulary "
                             f"(text {text!r})")
        return [i + 1 for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Ids → text (blanks and ``<unk>`` dropped, no CTC collapsing), the inverse of :meth:`encode`."""
        return self._sp.decode([i - 1 for i in ids if i > 1])

    def pieces(self, word: str) -> list[str]:
        """The pieces sentencepiece spells ``word`` with, the first marked ``▁`` (a lexicon entry)."""
        return self._sp.encode(word, out_type=str)


def verified_piece_tokenizer(model_proto: bytes, kind: str, sha256: str, vocab: Sequence[str], *,
                             vocab_name: str) -> PieceTokenizer:
    """A stored sentencepiece model as a tokenizer, after checking it: intact (``sha256``) and spelling ``vocab``.

    What a model file and an ONNX export both hold; ``vocab_name`` says in the message which vocabulary it is.

    Raises:
        ValueError: the bytes are damaged or altered, not a sentencepiece model of ``kind``, or other pieces.
    """
    if hashlib.sha256(model_proto).hexdigest() != sha256:
        raise ValueError("the tokenizer's sentencepiece model is damaged or altered (its SHA-256 differs from "
                         "the one recorded)")
    tokenizer = PieceTokenizer(model_proto, kind)
    if tokenizer.vocab != list(vocab):
        raise ValueError(f"the tokenizer's pieces differ from {vocab_name}")
    return tokenizer


Tokenizer = CharTokenizer | PieceTokenizer  # what a model file or vocab.json gives back
