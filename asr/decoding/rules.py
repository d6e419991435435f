"""Which decoders exist and which files each takes, importable without torch.

The config schema checks ``decoder.*`` settings with :func:`check_decoder_files` before any model
is loaded (``asr transcribe runtime=onnx`` never imports torch); :mod:`asr.decoding.ctc`, which
builds the decoders, re-exports both names.
"""

from __future__ import annotations

import os

DECODERS = ("greedy", "beam", "beam_lm", "beam_cuda")  # names asr.decoding.ctc.build_decoder knows


def check_decoder_files(name: str, lexicon: str | os.PathLike | None, lm: str | os.PathLike | None) -> None:
    """The rule for which decoder takes which files: ``beam_lm`` needs a lexicon and an LM, ``beam``
    may take a lexicon (words only, no LM), ``greedy`` and ``beam_cuda`` take neither.

    Args:
        name: one of :data:`DECODERS`.
        lexicon, lm: the ``decoder.lexicon`` and ``decoder.lm`` paths, or None (an empty string counts as unset).

    Raises:
        ValueError: the message names the ``decoder.*`` key to set or clear.
    """
    if name == "beam_lm" and (not lexicon or not lm):
        raise ValueError("decoder=beam_lm needs decoder.lexicon=<lexicon.txt> and decoder.lm=<ARPA or KenLM binary> "
                         "(both written by `asr build-lm`, recipe stage 5)")
    if name != "beam_lm" and lm:
        raise ValueError(f"decoder.lm is set but decoder.name={name} uses no language model: use decoder=beam_lm")
    if name in ("greedy", "beam_cuda") and lexicon:
        raise ValueError(f"decoder.lexicon is set but decoder.name={name} ignores it: use decoder=beam or beam_lm")
