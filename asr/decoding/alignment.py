"""Word timestamps and confidences from the greedy CTC path.

The greedy (best-path) decoder picks one symbol per frame; the frames where a character
is picked are that character's alignment. A word is the characters between two
separators (spaces), so its start is the first frame of its first character and its end
the last frame of its last character, plus one frame. Frame ``t`` starts at
``t * frame_shift_s`` (30 ms by default: 10 ms hop × 3 subsampling).

Confidence is the mean, over the word's character frames (blanks and separators
excluded), of the posterior of the symbol picked in that frame: 1.0 means the model put
all its mass on this spelling in every frame; a low value flags a word worth checking.
The mean (not the minimum) is used because CTC character runs often have one soft
frame at their edges even when the word is certain.

With subword pieces a word starts at a piece marked ``▁`` (a lone ``▁`` is only a
boundary), and its frames are those of its pieces; ``<unk>`` frames count as blanks.

The words' text joined by single spaces equals :func:`asr.decoding.ctc.greedy_decode`
followed by :meth:`CharTokenizer.decode`, with whitespace collapsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from asr.data.tokenizer import WORD_START, is_piece_vocab


@dataclass(frozen=True)
class Word:
    """One recognised word. Times are seconds from the start of the file."""

    text: str
    start_s: float
    end_s: float
    confidence: float

    @property
    def mid_s(self) -> float:
        """The word's midpoint in seconds (for assigning it to a segment)."""
        return (self.start_s + self.end_s) / 2

    def to_dict(self) -> dict:
        """``{"word", "start", "end", "confidence"}``, times in seconds rounded to ms, as outputs write it."""
        return {"word": self.text, "start": round(self.start_s, 3), "end": round(self.end_s, 3),
                "confidence": round(self.confidence, 3)}


def best_path(log_probs):
    """Greedy symbol and its posterior for every frame.

    Args:
        log_probs: ``(B, T, V)`` (or ``(T, V)``) frame log-posteriors, a numpy array or a torch tensor
            (numpy keeps ``asr transcribe runtime=onnx`` free of torch).

    Returns:
        ``ids: (B, T)`` integers (argmax, the first of equal maxima, as :func:`asr.decoding.ctc.greedy_decode`
        picks it) and ``posteriors: (B, T)`` floats in [0, 1], of the input's kind.
    """
    ids = log_probs.argmax(-1)
    if isinstance(log_probs, np.ndarray):
        return ids, np.exp(np.take_along_axis(log_probs, ids[..., None], axis=-1)[..., 0])
    return ids, log_probs.gather(-1, ids.unsqueeze(-1)).squeeze(-1).exp()


def words_from_path(ids: Sequence[int], posteriors: Sequence[float], vocab: Sequence[str], *,
                    frame_shift_s: float, offset_s: float = 0.0, blank: int = 0, separator: str = " ") -> list[Word]:
    """Collapse a greedy frame path into timed words.

    Args:
        ids: ``(T,)`` symbol per frame (valid frames only).
        posteriors: ``(T,)`` posterior of that symbol.
        vocab: id → symbol; ``vocab[blank]`` is the CTC blank.
        frame_shift_s: seconds between model frames.
        offset_s: time of frame 0 in the file (for windows of long files).
        separator: the symbol between words (characters; subword pieces mark word starts with ``▁``).

    Example:
        >>> vocab = ["<blank>", " ", "a", "b"]
        >>> path = [2, 2, 0, 3, 1, 0, 3]  # "ab", space, "b"
        >>> [(w.text, w.start_s, w.end_s) for w in words_from_path(path, [1.0] * 7, vocab, frame_shift_s=0.5)]
        [('ab', 0.0, 2.0), ('b', 3.0, 3.5)]
    """
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0  # frames of the current word: [start, end)
    conf_sum, conf_n = 0.0, 0
    prev = blank
    pieces = is_piece_vocab(vocab)
    if pieces:
        separator = WORD_START

    def close() -> None:
        if chars:
            words.append(Word("".join(chars), offset_s + start * frame_shift_s, offset_s + end * frame_shift_s,
                              conf_sum / conf_n))

    for t, (sym, post) in enumerate(zip(ids, posteriors)):
        if sym == blank or (pieces and sym == 1):  # pieces: id 1 is <unk>, never a target
            prev = sym
            continue
        symbol = vocab[sym]
        if symbol == separator:
            if sym != prev:  # a new separator emission ends the current word
                close()
                chars, conf_sum, conf_n = [], 0.0, 0
        else:
            if sym != prev:  # a new character emission (a repeat needs a blank in between)
                if pieces and symbol.startswith(WORD_START):  # a piece that starts a word ends the last one
                    close()
                    chars, conf_sum, conf_n = [], 0.0, 0
                    symbol = symbol[len(WORD_START):]
                if not chars:
                    start = t
                chars.append(symbol)
            end = t + 1
            conf_sum += float(post)
            conf_n += 1
        prev = sym
    close()
    return words


def is_quiet(sym: int, vocab: Sequence[str], blank: int = 0) -> bool:
    """Whether a greedy-path symbol says nothing: the blank or the separator (what an endpointer counts)."""
    return sym == blank or vocab[sym] == " "


def blank_runs(ids: Sequence[int], vocab: Sequence[str], blank: int = 0) -> tuple[list[int], list[int]]:
    """Lengths in frames of the quiet runs after a word's symbols on a greedy path: inside words and between.

    A frame is quiet by :func:`is_quiet`, the rule of the model-blank endpointer of
    :class:`asr.inference.streaming.StreamingRecognizer`. A run between two symbols is *between words*
    when it holds a separator or the next symbol starts a word (a ``▁`` piece), else *inside* a word. Runs
    before the first symbol and after the last are not counted. ``endpoint_blank_s`` above the longest run
    inside words (times the frame shift) never ends a segment inside a word of this path.

    Example:
        >>> vocab = ["<blank>", " ", "a", "b"]
        >>> blank_runs([0, 2, 0, 0, 2, 0, 1, 0, 3, 0, 0], vocab)  # "aa", three quiet frames, "b"
        ([2], [3])
    """
    inside: list[int] = []
    between: list[int] = []
    run, separated, started = 0, False, False
    for sym in ids:
        symbol = vocab[sym]
        if is_quiet(sym, vocab, blank):
            run += 1
            separated |= symbol == " "
            continue
        if started and run:
            (between if separated or symbol.startswith(WORD_START) else inside).append(run)
        started, run, separated = True, 0, False
    return inside, between


def force_align(log_probs, targets: Sequence[int], blank: int = 0) -> list[int] | None:
    """The most likely CTC frame path that spells ``targets``: one symbol (or blank) per frame.

    Viterbi over the usual CTC states (a blank around every target symbol; a repeated symbol
    needs a blank between its copies). Gives any decoder's transcript (beam search, lexicon +
    LM) the frame path that :func:`words_from_path` turns into timed words with confidences.

    Args:
        log_probs: ``(T, V)`` torch tensor, the valid frames of one utterance.
        targets: ``(L,)`` symbol ids, no blanks.

    Returns:
        ``(T,)`` symbol ids, or None when ``targets`` cannot fit in ``T`` frames.

    Example:
        >>> import torch
        >>> lp = torch.log(torch.tensor([[.1, .8, .1], [.6, .2, .2], [.1, .1, .8], [.1, .3, .6]]))
        >>> force_align(lp, [1, 2]), force_align(lp, [1, 1]), force_align(lp, [2, 2, 2])
        ([1, 0, 2, 2], [1, 0, 1, 1], None)
    """
    import torch  # here: transcription's greedy words (best_path, words_from_path) run without torch

    T = log_probs.shape[0]
    states = [blank]
    for sym in targets:
        states += [sym, blank]
    S = len(states)
    lp = log_probs.detach().float().cpu()[:, states]  # (T, S): each state's log-posterior per frame
    sym = torch.tensor(states)
    skip = torch.zeros(S, dtype=torch.bool)  # state s may be entered from s - 2 (skipping a blank)
    skip[2:] = (sym[2:] != blank) & (sym[2:] != sym[:-2])
    score = torch.full((S,), -float("inf"))
    score[:2] = lp[0, :2]
    back = torch.zeros(T, S, dtype=torch.long)
    for t in range(1, T):
        stay, step = score, torch.cat([torch.tensor([-float("inf")]), score[:-1]])
        jump = torch.where(skip, torch.cat([torch.full((2,), -float("inf")), score[:-2]])[:S], -float("inf"))
        best = torch.stack([stay, step, jump])  # (3, S): from s, s - 1, s - 2
        score, back[t] = best.max(0).values + lp[t], best.argmax(0)
    end = S - 1 if S == 1 or score[S - 1] >= score[S - 2] else S - 2
    if not torch.isfinite(score[end]):
        return None
    path = [end]
    for t in range(T - 1, 0, -1):
        path.append(path[-1] - int(back[t, path[-1]]))
    return [states[s] for s in reversed(path)]
