"""CTC decoding: greedy best path, and beam search with an optional lexicon and KenLM n-gram.

Greedy best-path decoding is a pure function on a tensor. Beam search uses torchaudio's
``ctc_decoder`` (flashlight-text's beam search, KenLM for the n-gram); :func:`build_decoder`
returns a callable ``(log_probs: (B, T, V), lengths: (B,)) -> list[str]`` for any of them.
On a GPU, ``beam_cuda`` runs torchaudio's CUDA prefix beam search (characters only, no
lexicon or LM) where the posteriors already are, with no copy to the CPU.

The character vocabulary maps onto the decoder's tokens one to one: the blank keeps index
0 and the space, the word boundary, is the decoder's silence token ``|``. A lexicon lists
each word once with its characters (``yes  y e s |``): with it the search only emits
words of the lexicon, which is what lets a word n-gram score them.

A subword (sentencepiece) vocabulary has no space token: a piece starting with ``▁``
starts a word. Its lexicon spells each word with its sentencepiece segmentation
(``yes  ▁y es``, no boundary token), and the search's silence token is ``<unk>``, which
is never a training target, so the model gives it no mass and no boundary is needed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from asr.data.tokenizer import BLANK, UNK_PIECE, is_piece_vocab, join_symbols
from asr.decoding.rules import DECODERS, check_decoder_files  # noqa: F401 - re-exported
from asr.fileio import atomic_write_text

WORD_BOUNDARY = "|"  # the decoder's name for the space character
Decoder = Callable[[torch.Tensor, torch.Tensor], list[str]]


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


# ---- lexicon ----------------------------------------------------------------------------------


def lexicon_from_texts(texts: Iterable[str], vocab: Sequence[str],
                       pieces: Callable[[str], list[str]] | None = None) -> dict[str, list[str]]:
    """Every word of ``texts`` (split on spaces) with its spelling in decoder tokens, sorted.

    Args:
        texts: transcripts. vocab: the model's symbols, blank first.
        pieces: for a subword vocabulary, word → its pieces (:meth:`asr.data.tokenizer.PieceTokenizer.pieces`).

    Raises:
        ValueError: a word has characters outside ``vocab`` (named with the word).

    Example:
        >>> lexicon_from_texts(["yes no", "no"], ["<blank>", " ", "e", "n", "o", "s", "y"])
        {'no': ['n', 'o', '|'], 'yes': ['y', 'e', 's', '|']}
    """
    chars = set(vocab[1:])
    words = sorted({w for t in texts for w in t.split()})
    if pieces is not None:
        return {w: _spelled_in_pieces(w, pieces(w), chars) for w in words}
    lexicon = {}
    for w in words:
        bad = sorted(set(w) - chars)
        if bad:
            raise ValueError(f"word {w!r} has characters {bad} outside the vocabulary")
        lexicon[w] = [*w, WORD_BOUNDARY]
    return lexicon


def _spelled_in_pieces(word: str, spelling: list[str], pieces: set[str]) -> list[str]:
    if not spelling or UNK_PIECE in spelling or not set(spelling) <= pieces:
        raise ValueError(f"word {word!r} has characters outside the vocabulary (pieces {spelling})")
    return spelling


def write_lexicon(path: str | os.PathLike, lexicon: dict[str, list[str]]) -> None:
    """One line per word: the word, a tab, its tokens separated by spaces (flashlight's format)."""
    atomic_write_text(path, "".join(f"{w}\t{' '.join(spelling)}\n" for w, spelling in lexicon.items()))


def read_lexicon(path: str | os.PathLike, vocab: Sequence[str]) -> dict[str, list[str]]:
    """Read and check a lexicon file against the model's vocabulary.

    Raises:
        ValueError: naming the file and line of a malformed entry or unknown token.
    """
    tokens = set(decoder_tokens(vocab))
    lexicon: dict[str, list[str]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise FileNotFoundError(f"decoder.lexicon: cannot read {path}: {err.strerror}") from None
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}:{n}: expected a word and its tokens, got {line!r}")
        unknown = sorted(set(parts[1:]) - tokens)
        if unknown:
            raise ValueError(f"{path}:{n}: word {parts[0]!r} is spelled with tokens {unknown} that the model "
                             f"does not have")
        lexicon.setdefault(parts[0], parts[1:])
    if not lexicon:
        raise ValueError(f"{path}: the lexicon is empty")
    return lexicon


def decoder_tokens(vocab: Sequence[str]) -> list[str]:
    """The model's vocabulary as decoder tokens: the same order, the space renamed ``|``."""
    if not vocab or vocab[0] != BLANK:
        raise ValueError(f"vocabulary must start with {BLANK!r}")
    return [WORD_BOUNDARY if c == " " else c for c in vocab]


# ---- decoders ---------------------------------------------------------------------------------


class GreedyDecoder:
    """Best path, as text. ``(log_probs: (B, T, V), lengths: (B,))`` → one string per utterance.

    Spaces the path emits at the ends or twice in a row are dropped, so the text reads as the
    words of :func:`asr.decoding.alignment.words_from_path` joined by single spaces (what
    ``asr-transcribe`` writes).
    """

    def __init__(self, vocab: Sequence[str]):
        self.vocab = list(vocab)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        texts = (join_symbols(self.vocab, ids) for ids in greedy_decode(log_probs, lengths))
        return [" ".join(w for w in text.split(" ") if w) for text in texts]


class BeamSearchDecoder:
    """CTC beam search (flashlight-text through torchaudio), with an optional lexicon and KenLM LM.

    Args:
        vocab: the model's characters, blank first.
        lexicon: path of a lexicon file; ``None``: free character sequences (no LM allowed).
        lm: path of a KenLM model (ARPA or binary) over the lexicon's words; ``None``: no LM.
        beam_size, beam_size_token, beam_threshold: search breadth (see :class:`asr.config.schema.DecoderConfig`).
        lm_weight, word_score, sil_score: score = acoustic + lm_weight · LM + word_score · words + sil_score · spaces.
        log_add: merge hypotheses with the same prefix by adding probabilities (the CTC prefix sum).

    Shapes: ``(log_probs: (B, T, V), lengths: (B,))`` → one string per utterance.
    """

    def __init__(self, vocab: Sequence[str], *, lexicon: str | os.PathLike | None = None,
                 lm: str | os.PathLike | None = None, beam_size: int = 50, beam_size_token: int | None = None,
                 beam_threshold: float = 25.0, lm_weight: float = 0.0, word_score: float = 0.0,
                 sil_score: float = 0.0, log_add: bool = True):
        try:
            from torchaudio.models.decoder import ctc_decoder
        except (ImportError, RuntimeError) as err:
            raise RuntimeError(f"beam search needs the flashlight-text package (pip install flashlight-text): "
                               f"{err}") from None
        check_decoder_files("beam_lm" if lm is not None else "beam", lexicon, lm)
        if lexicon is not None:
            read_lexicon(lexicon, vocab)  # a clear error here, not a crash inside flashlight
        if lm is not None and not Path(lm).is_file():
            raise FileNotFoundError(f"decoder.lm: no language model file at {lm} (build it with "
                                    "`asr build-lm`, recipe stage 5)")
        self.vocab = list(vocab)
        self.uses_lexicon = lexicon is not None
        pieces = is_piece_vocab(self.vocab)
        self.boundary = None if pieces else self.vocab.index(" ") if self.uses_lexicon else None
        self._decoder = ctc_decoder(
            lexicon=None if lexicon is None else str(lexicon), tokens=decoder_tokens(vocab),
            lm=None if lm is None else str(lm), beam_size=beam_size, beam_size_token=beam_size_token,
            beam_threshold=beam_threshold, lm_weight=lm_weight, word_score=word_score, sil_score=sil_score,
            log_add=log_add, blank_token=BLANK, sil_token=UNK_PIECE if pieces else WORD_BOUNDARY, unk_word="<unk>")

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        emissions = log_probs.detach().to("cpu", torch.float32)  # (B, T, V)
        lengths = lengths.detach().to("cpu", torch.int64)
        if self.boundary is not None:  # characters: the last word ends with a space too
            emissions, lengths = append_word_boundary(emissions, lengths, self.boundary)
        emissions, lengths = emissions.contiguous(), lengths.to(torch.int32)
        out = []
        for hyps in self._decoder(emissions, lengths):
            if not hyps:
                out.append("")
            elif self.uses_lexicon:
                out.append(" ".join(w for w in hyps[0].words if w))
            else:
                # flashlight frames the path with the word boundary at both ends: strip() drops them
                out.append(join_symbols(self.vocab, hyps[0].tokens.tolist()).strip())
        return out


class CudaBeamSearchDecoder:
    """CTC prefix beam search on the GPU (torchaudio's ``cuda_ctc_decoder``): no lexicon, no LM.

    Args:
        vocab: the model's characters, blank first (the CUDA search requires blank id 0).
        beam_size: prefixes kept per frame (at most the vocabulary size).
        blank_skip_threshold: frames whose blank probability exceeds it are skipped (faster;
            1.0 skips none).

    Shapes: ``(log_probs: (B, T, V), lengths: (B,))`` → one string per utterance.
    """

    def __init__(self, vocab: Sequence[str], *, beam_size: int = 10, blank_skip_threshold: float = 0.95):
        if not torch.cuda.is_available():
            raise RuntimeError("needs a CUDA GPU and none is available here: "
                               "use decoder=beam (the same search on the CPU)")
        try:
            from torchaudio.models.decoder import cuda_ctc_decoder
        except (ImportError, RuntimeError, AttributeError) as err:
            raise RuntimeError(f"this torchaudio build has no CUDA CTC decoder ({err}); use decoder=beam") from None
        tokens = decoder_tokens(vocab)  # checks that the blank comes first
        self.vocab = list(vocab)
        self._decoder = cuda_ctc_decoder(tokens, nbest=1, beam_size=beam_size,
                                         blank_skip_threshold=blank_skip_threshold)

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        emissions = log_probs.detach().to("cuda", torch.float32).contiguous()
        hyps = self._decoder(emissions, lengths.detach().to("cuda", torch.int32))
        return [join_symbols(self.vocab, h[0].tokens).strip() if h else "" for h in hyps]


def append_word_boundary(log_probs: torch.Tensor, lengths: torch.Tensor, boundary: int):
    """Add one frame after each utterance's last one that is certainly a word boundary.

    Lexicon spellings end with the boundary token, as every word but the last is followed
    by a space in training text; this frame ends the last word too (its score is log 1 = 0).

    Shapes: ``(B, T, V), (B,)`` → ``(B, T + 1, V), (B,)`` with lengths one larger.
    """
    B, T, V = log_probs.shape
    out = torch.cat([log_probs, torch.zeros(B, 1, V, dtype=log_probs.dtype)], dim=1)
    frame = torch.full((V,), -1e5, dtype=log_probs.dtype)
    frame[boundary] = 0.0
    out[torch.arange(B), lengths] = frame
    return out, lengths + 1


def build_decoder(name: str, vocab: Sequence[str], **options) -> Decoder:
    """A decoder by name: ``greedy`` (no options), ``beam`` or ``beam_lm`` (:class:`BeamSearchDecoder`
    options), ``beam_cuda`` (:class:`CudaBeamSearchDecoder` options)."""
    if name == "greedy":
        return GreedyDecoder(vocab)
    if name in DECODERS:
        check_decoder_files(name, options.get("lexicon"), options.get("lm"))
    if name in ("beam", "beam_lm"):
        return BeamSearchDecoder(vocab, **options)
    if name == "beam_cuda":
        return CudaBeamSearchDecoder(vocab, **options)
    raise ValueError(f"unknown decoder {name!r} ({', '.join(DECODERS)})")
