"""``asr build-lm``: lexicon + KenLM n-gram for beam search (:class:`asr.config.commands.BuildLmConfig`)."""

from __future__ import annotations

from asr.cli.common import Flags, tool
from asr.config.commands import BuildLmConfig

# python -m asr.decoding.lm build --train T --vocab V --out DIR --order 3
FLAGS = Flags(options={"--train": "train", "--vocab": "vocab", "--out": "out", "--order": "order"})


def _build(c: BuildLmConfig) -> int:
    from asr.decoding.lm import build_lm

    s = build_lm(c.train, c.vocab, c.out, c.order)
    counts = ", ".join(f"{n}-grams {k}" for n, k in s["ngrams"].items())
    print(f"lexicon: {s['words']} words -> {s['lexicon']}; {s['order']}-gram from {s['sentences']} sentences "
          f"({counts}) -> {s['arpa']}, {s['binary']} in {s['seconds']:.1f} s")
    return 0


def build_lm_main(argv: list[str] | None = None) -> int:
    """``asr build-lm train=<manifest> vocab=<vocab.json> out=<folder> [order=3]``; returns the exit status."""
    return tool("build-lm", _build, argv, FLAGS)


def module_main(argv: list[str]) -> int:
    """``python -m asr.decoding.lm build --train ...`` (the module's older form): :func:`build_lm_main`."""
    if argv[:1] == ["build"]:
        argv = argv[1:]
    return build_lm_main(argv)
