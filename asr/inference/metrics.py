"""Word and character error rates with jiwer, with per-utterance alignments, and corpus scoring (:func:`score`).

No torch here: transcription scores a manifest's references with it in ``runtime=onnx`` runs too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from asr.data.manifest import Utterance


@dataclass
class ErrorCounts:
    """Edit-distance counts; ``rate = (S + D + I) / N`` with N reference units."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0

    @property
    def ref_len(self) -> int:
        return self.substitutions + self.deletions + self.hits

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Error rate; an empty reference scores 0 if the hypothesis is empty too, else 1 per inserted unit."""
        return self.errors / self.ref_len if self.ref_len else float(self.insertions)

    def to_dict(self) -> dict:
        """The counts with ``ref_len``, ``errors`` and ``rate`` added, as summaries store them."""
        return {**asdict(self), "ref_len": self.ref_len, "errors": self.errors, "rate": self.rate}


def _counts(ref_units: list[str], hyp_units: list[str]) -> tuple[ErrorCounts, list]:
    """Counts and jiwer alignment chunks for one pair of token lists (handles empty sides)."""
    if not ref_units:
        return ErrorCounts(insertions=len(hyp_units)), []
    if not hyp_units:
        return ErrorCounts(deletions=len(ref_units)), []
    import jiwer  # here: transcription without references (a folder, a file) never scores

    out = jiwer.process_words(" ".join(ref_units), " ".join(hyp_units))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, out.hits), out.alignments[0]


def word_errors(ref: str, hyp: str) -> ErrorCounts:
    """Word errors of ``hyp`` against ``ref`` (whitespace-separated words)."""
    return _counts(ref.split(), hyp.split())[0]


def char_errors(ref: str, hyp: str) -> ErrorCounts:
    """Character errors, spaces counted as characters (as jiwer's CER does)."""
    # jiwer aligns space-separated tokens: map each character to a token first
    enc = {" ": "<sp>"}
    return _counts([enc.get(c, c) for c in " ".join(ref.split())], [enc.get(c, c) for c in " ".join(hyp.split())])[0]


def alignment_text(ref: str, hyp: str) -> str:
    """Three aligned lines, ``REF``/``HYP``/marks (S, D, I), for a report."""
    r, h = ref.split(), hyp.split()
    _, chunks = _counts(r, h)
    if not r or not h:
        chunks = [type("C", (), dict(type="delete" if r else "insert", ref_start_idx=0, ref_end_idx=len(r),
                                     hyp_start_idx=0, hyp_end_idx=len(h)))()]
    ref_row, hyp_row, mark_row = [], [], []
    for c in chunks:
        rs, hs = r[c.ref_start_idx:c.ref_end_idx], h[c.hyp_start_idx:c.hyp_end_idx]
        for i in range(max(len(rs), len(hs))):
            a = rs[i] if i < len(rs) else "*" * len(hs[i])
            b = hs[i] if i < len(hs) else "*" * len(rs[i])
            w = max(len(a), len(b))
            mark = {"equal": " ", "substitute": "S", "delete": "D", "insert": "I"}[c.type]
            ref_row.append(a.ljust(w))
            hyp_row.append(b.ljust(w))
            mark_row.append(mark.ljust(w))
    return "\n".join(["REF: " + " ".join(ref_row), "HYP: " + " ".join(hyp_row), "     " + " ".join(mark_row)]).rstrip()


def add(a: ErrorCounts, b: ErrorCounts) -> ErrorCounts:
    """Counts of two sets of utterances together (rates are then pooled, not averaged)."""
    return ErrorCounts(a.substitutions + b.substitutions, a.deletions + b.deletions,
                       a.insertions + b.insertions, a.hits + b.hits)


def format_pct(rate: float | None, missing: str = "-") -> str:
    """A rate (a fraction) as a percentage with two decimals: ``0.0757`` -> ``"7.57 %"``.

    ``missing`` stands in for a rate that does not exist: ``None``, NaN or infinite (a run
    without a dev set records its best dev WER as ``inf``).
    """
    return missing if rate is None or not math.isfinite(rate) else f"{100 * rate:.2f} %"


@dataclass
class Hypothesis:
    """The recognised text of one utterance; ``error`` says why there is none."""

    utt_id: str
    text: str | None  # None: the audio could not be read
    error: str | None = None


def score(utts: Sequence[Utterance], hyps: Sequence[Hypothesis]) -> tuple[dict, list[dict]]:
    """Corpus WER/CER with S/D/I counts, and one row per utterance sorted worst first.

    An utterance whose audio could not be read is scored as all deletions (it counts
    against the model, and is listed in ``failed``).
    """
    words, chars = ErrorCounts(), ErrorCounts()
    rows, failed = [], []
    for u, h in zip(utts, hyps):
        hyp = h.text if h.text is not None else ""
        if h.text is None:
            failed.append({"utt_id": u.utt_id, "reason": h.error})
        w, c = word_errors(u.text, hyp), char_errors(u.text, hyp)
        words, chars = add(words, w), add(chars, c)
        rows.append({"utt_id": u.utt_id, "ref": u.text, "hyp": hyp, "wer": w.rate, "cer": c.rate,
                     "word_errors": w.errors, "ref_words": w.ref_len, "error": h.error})
    rows.sort(key=lambda r: (-r["word_errors"], -r["wer"], r["utt_id"]))
    summary = {
        "wer": words.rate, "cer": chars.rate, "utterances": len(utts),
        "words": words.to_dict(), "chars": chars.to_dict(),
        "sentence_error_rate": sum(r["word_errors"] > 0 for r in rows) / max(1, len(rows)),
        "failed": failed,
    }
    return summary, rows
