"""Pieces per character for BPE and unigram tokenizers of several sizes, trained on one corpus's transcripts.

How many CTC targets each ``data.vocab_size`` gives (docs/model-and-decoding.md, "Choosing the size"):

    python benchmarks/tokenizer_sizes.py --kaldi-text ../shared/data/speechocean762/train/text
    python benchmarks/tokenizer_sizes.py --manifest data/train.jsonl --sizes 128,256,512

Prints one JSON object; a size the text cannot fill is reported with sentencepiece's reason.
"""

from __future__ import annotations

import argparse
import json

from asr.data.manifest import read_manifest
from asr.data.text import normalize_text
from asr.data.tokenizer import PIECE_KINDS, PieceTokenizer


def transcripts(manifest: str | None, kaldi_text: str | None) -> list[str]:
    """A manifest's texts, or a Kaldi ``text`` file's (``<utt-id> <transcript>`` lines) normalised as importers do."""
    if manifest:
        return [u.text for u in read_manifest(manifest) if u.text.strip()]
    with open(kaldi_text, encoding="utf-8") as f:
        texts = [normalize_text(parts[1]) for parts in (line.split(None, 1) for line in f) if len(parts) == 2]
    return [t for t in texts if t]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest")
    src.add_argument("--kaldi-text")
    p.add_argument("--sizes", default="64,128,256,512,1024")
    a = p.parse_args()
    texts = transcripts(a.manifest, a.kaldi_text)
    chars = sum(len(t) for t in texts)
    rows = []
    for kind in PIECE_KINDS:
        for size in (int(s) for s in a.sizes.split(",")):
            try:
                tok = PieceTokenizer.train(texts, kind, size)
            except ValueError as err:
                rows.append({"tokenizer": kind, "vocab_size": size, "error": str(err)})
                continue
            pieces = sum(len(tok.encode(t)) for t in texts)
            rows.append({"tokenizer": kind, "vocab_size": size, "pieces_per_char": round(pieces / chars, 3)})
    print(json.dumps({"benchmark": "tokenizer_sizes", "source": a.manifest or a.kaldi_text, "transcripts": len(texts),
                      "chars": chars, "words": sum(len(t.split()) for t in texts),
                      "distinct_words": len({w for t in texts for w in t.split()}), "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
