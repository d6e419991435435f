"""Word n-gram language models for the beam search decoder, estimated with KenLM's ``lmplz``.

Why KenLM: it is the format the decoder reads (flashlight-text links KenLM), and ``lmplz``
estimates interpolated modified Kneser-Ney models, the standard smoothing for word
n-grams. ``tools/install_kenlm.sh`` (run by ``make install``) builds ``lmplz`` and
``build_binary`` from the ``kenlm`` source distribution on PyPI into the virtualenv.

Usage (recipe stage 5)::

    asr build-lm train=data/train.jsonl vocab=lang/vocab.json out=lang order=3

writes into ``lang/``: ``lexicon.txt`` (every training word with its characters, or with a
subword vocabulary its sentencepiece pieces),
``lm_text.txt`` (the training transcripts, one per line), ``lm_3gram.arpa`` and its
binary form ``lm_3gram.bin``, which the decoder loads faster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr.data.manifest import read_manifest
from asr.decoding.ctc import lexicon_from_texts, write_lexicon
from asr.fileio import atomic_write_text

INSTALL_HINT = "build it with tools/install_kenlm.sh (make install runs it)"


def find_tool(name: str) -> Path:
    """Path of a KenLM program: ``$ASR_KENLM_BIN``, the running python's folder, ``PATH``, the build cache.

    Raises:
        FileNotFoundError: naming the program and how to build it.
    """
    candidates = []
    if os.environ.get("ASR_KENLM_BIN"):
        candidates.append(Path(os.environ["ASR_KENLM_BIN"]) / name)
    candidates.append(Path(sys.executable).parent / name)
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    cache = Path(os.environ.get("ASR_KENLM_CACHE", Path.home() / ".cache/asr/kenlm-0.3.0"))
    candidates.append(cache / "bin" / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(f"KenLM's {name} was not found (looked in {', '.join(str(c.parent) for c in candidates)}): "
                            f"{INSTALL_HINT}")


def _run(cmd: list[str], *, stdin=None, what: str) -> None:
    proc = subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def estimate_arpa(text_path: str | os.PathLike, arpa_path: str | os.PathLike, order: int = 3, *,
                  memory: str = "10%", discount_fallback: bool = True) -> Path:
    """Estimate a modified Kneser-Ney ``order``-gram ARPA file from one sentence per line.

    ``memory`` bounds lmplz's sorting memory (its default takes 80 % of RAM);
    ``discount_fallback`` lets small corpora through, whose count-of-counts leave some
    Kneser-Ney discounts undefined (lmplz then uses its fallback discounts, and says so).
    The ARPA file appears complete or not at all.
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    arpa_path = Path(arpa_path)
    arpa_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = arpa_path.with_name(arpa_path.name + ".tmp")
    with tempfile.TemporaryDirectory(dir=arpa_path.parent) as sort_dir, open(text_path, "rb") as text:
        cmd = [str(find_tool("lmplz")), "-o", str(order), "-S", memory, "-T", sort_dir, "--arpa", str(tmp)]
        if discount_fallback:
            cmd.append("--discount_fallback")
        try:
            _run(cmd, stdin=text, what="lmplz")
        except RuntimeError:
            tmp.unlink(missing_ok=True)
            raise
    os.replace(tmp, arpa_path)
    return arpa_path


def arpa_to_binary(arpa_path: str | os.PathLike, bin_path: str | os.PathLike) -> Path:
    """KenLM's binary (probing hash) form of an ARPA file: the same model, loaded in a fraction of the time."""
    bin_path = Path(bin_path)
    tmp = bin_path.with_name(bin_path.name + ".tmp")
    try:
        _run([str(find_tool("build_binary")), "-S", "10%", "probing", str(arpa_path), str(tmp)], what="build_binary")
    except RuntimeError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, bin_path)
    return bin_path


def arpa_counts(arpa_path: str | os.PathLike) -> dict[int, int]:
    """N-gram counts from an ARPA header: ``{1: unigrams, 2: bigrams, ...}``."""
    counts = {}
    with open(arpa_path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"ngram (\d+)=(\d+)", line.strip())
            if m:
                counts[int(m.group(1))] = int(m.group(2))
            elif counts and line.startswith("\\1-grams"):
                break
    if not counts:
        raise ValueError(f"{arpa_path}: no ARPA header (\\data\\ with ngram N=count lines)")
    return counts


def build_lm(train_manifest: str | os.PathLike, vocab_path: str | os.PathLike, out_dir: str | os.PathLike,
             order: int = 3) -> dict:
    """Lexicon, LM text, ARPA and binary n-gram from a training manifest's transcripts.

    Returns:
        A summary (paths, words, sentences, n-gram counts, seconds), also written to ``lm_summary.json``.
    """
    from asr.frontend.stats import load_vocab

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = [u.text for u in read_manifest(train_manifest) if u.text.strip()]
    if not texts:
        raise ValueError(f"{train_manifest}: no transcripts to estimate a language model from")
    tokenizer = load_vocab(vocab_path)
    lexicon = lexicon_from_texts(texts, tokenizer.vocab, getattr(tokenizer, "pieces", None))
    write_lexicon(out / "lexicon.txt", lexicon)
    atomic_write_text(out / "lm_text.txt", "".join(t + "\n" for t in texts))
    arpa = estimate_arpa(out / "lm_text.txt", out / f"lm_{order}gram.arpa", order)
    binary = arpa_to_binary(arpa, out / f"lm_{order}gram.bin")
    summary = {"lexicon": str(out / "lexicon.txt"), "arpa": str(arpa), "binary": str(binary), "order": order,
               "words": len(lexicon), "sentences": len(texts), "ngrams": arpa_counts(arpa),
               "train_manifest": str(train_manifest), "seconds": time.perf_counter() - t0}
    atomic_write_text(out / "lm_summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":  # python -m asr.decoding.lm build --train ...: the same as asr build-lm
    from asr.cli.lm import module_main

    sys.exit(module_main(sys.argv[1:]))
