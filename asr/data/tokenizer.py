"""Character tokenizer for CTC: index 0 is the blank, then one index per character."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

BLANK = "<blank>"


class CharTokenizer:
    """Maps text to character ids and back; id 0 is the CTC blank.

    Example:
        >>> tok = CharTokenizer.build(["yes", "no"])
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
