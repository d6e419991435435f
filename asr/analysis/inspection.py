"""Look inside a trained model on one utterance: features, posteriors, words, gates.

:func:`inspect_utterance` runs a :class:`asr.models.acoustic.Recognizer` on a waveform and keeps
what each stage produced (normalised MFCC, CTC posteriors, the greedy path and its timed
words, and every gate value of one direction of one recurrent layer, recomputed by
:mod:`asr.analysis.gates`). :func:`write_inspection` turns that into PNG figures and a JSON
summary. Everything is one utterance, on the CPU, in inference mode.

Example:
    >>> model, tokenizer, _ = load_model("exp/an4/train/model.pt")  # doctest: +SKIP
    >>> wave = torch.from_numpy(load_audio("an406-fcaw-b.flac", 16000))  # doctest: +SKIP
    >>> write_inspection(inspect_utterance(model, tokenizer, wave, layer=-1), "figs/")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.analysis.gates import DIRECTIONS, layer_input, top_units, trace_layer
from asr.analysis.plots import gates_figure, mfcc_figure, posteriorgram_figure, save_figure, waveform_figure
from asr.config.schema import ConfigError
from asr.data.tokenizer import CharTokenizer
from asr.decoding.alignment import Word, best_path, words_from_path
from asr.decoding.ctc import greedy_decode
from asr.fileio import atomic_write_text
from asr.models.acoustic import Recognizer


@dataclass(frozen=True)
class Inspection:
    """What the model computed for one utterance (valid frames only, no batch axis).

    Times: ``mfcc`` frames are ``mfcc_shift_s`` apart (10 ms), model frames
    (``posteriors``, ``path``, ``trace``) ``frame_shift_s`` apart (30 ms); frame ``t``
    starts at ``t * shift``.
    """

    wave: np.ndarray  # (S,) samples
    sample_rate_hz: int
    mfcc: np.ndarray  # (T_10ms, F) normalised MFCC (+ deltas)
    mfcc_shift_s: float
    posteriors: np.ndarray  # (T, V) CTC posteriors
    path: np.ndarray  # (T,) greedy symbol per frame
    frame_shift_s: float
    vocab: list[str]
    text: str  # greedy transcript
    words: list[Word]
    layer: int  # 0-based index of the traced recurrent layer
    num_layers: int
    direction: str  # forward | backward
    rnn_type: str  # lstm | gru
    trace: dict[str, np.ndarray]  # {key: (T, H)}, keys asr.analysis.gates.LSTM_KEYS or GRU_KEYS
    recompute_error: float  # max |recomputed hidden - the module's own output| (float rounding only)


def resolve_layer(layer: int, num_layers: int) -> int:
    """``layer`` as a 0-based index; negative counts from the top (-1: the top layer)."""
    if not -num_layers <= layer < num_layers:
        raise ConfigError(f"layer={layer}: the model has {num_layers} recurrent layers "
                          f"(0 to {num_layers - 1}, or -1 for the top one)")
    return layer % num_layers


@torch.no_grad()
def inspect_utterance(model: Recognizer, tokenizer: CharTokenizer, wave: torch.Tensor, *, layer: int = -1,
                      direction: str = "forward") -> Inspection:
    """Run ``model`` on one waveform and keep every stage's output.

    Args:
        model: a recognizer (put in eval mode here).
        tokenizer: its vocabulary.
        wave: ``(S,)`` float samples at the model's sample rate.
        layer: recurrent layer to trace, 0-based; negative counts from the top.
        direction: ``"forward"`` or ``"backward"``.
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction={direction!r}: must be one of {', '.join(DIRECTIONS)}")
    model.eval()
    acoustic, fe = model.acoustic, model.features
    index = resolve_layer(layer, len(acoustic.layers))
    rnn = acoustic.layers[index].forward_rnn
    if getattr(rnn, "proj_size", 0):
        raise RuntimeError(f"layer {index} is a projected LSTM (model.proj_size={rnn.proj_size}): its gates cannot be "
                           "recomputed here, only plain LSTM/GRU layers can be inspected")
    if getattr(acoustic, "chunk_frames", 0):
        raise RuntimeError("a latency-controlled model (model.chunk_s): its layers run chunk by chunk, and the gates "
                           "shown here would be those of the full-context computation; only full-context and "
                           "unidirectional models can be inspected")
    waves, wave_lens = wave[None].float(), torch.tensor([wave.shape[-1]])  # (1, S), (1,)

    mfcc, mfcc_lens = fe.mfcc(waves, wave_lens)  # (1, T_10ms, F), un-normalised
    mfcc = (mfcc - fe.mean) / fe.std
    feats, lens = fe(waves, wave_lens)  # (1, T, F * stack)
    log_probs = acoustic(feats, lens)  # (1, T, V)
    ids, post = best_path(log_probs)
    T = int(lens[0])
    x = layer_input(acoustic, feats, lens, index)
    trace = trace_layer(acoustic.layers[index], x, lens, direction)
    # the module's own output for this direction, to show that the recomputation is exact
    own = acoustic.layers[index](x, lens)  # (1, T, H * directions), forward units first
    own = own[..., : rnn.hidden_size] if direction == "forward" else own[..., rnn.hidden_size:]
    error = float((trace["hidden"][:, :T] - own[:, :T]).abs().max()) if T else 0.0

    shift = fe.config.output_frame_shift_s
    return Inspection(
        wave=wave.numpy(), sample_rate_hz=fe.config.sample_rate_hz,
        mfcc=mfcc[0, : int(mfcc_lens[0])].numpy(), mfcc_shift_s=fe.config.hop_length_ms / 1000,
        posteriors=log_probs[0, :T].exp().numpy(), path=ids[0, :T].numpy(), frame_shift_s=shift,
        vocab=list(tokenizer.vocab), text=tokenizer.decode(greedy_decode(log_probs, lens)[0]),
        words=words_from_path(ids[0, :T].tolist(), post[0, :T].tolist(), tokenizer.vocab, frame_shift_s=shift),
        layer=index, num_layers=len(acoustic.layers), direction=direction,
        rnn_type="lstm" if isinstance(rnn, torch.nn.LSTM) else "gru",
        trace={k: v[0, :T].numpy() for k, v in trace.items()}, recompute_error=error)


def figure_names(layer: int, direction: str) -> dict[str, str]:
    """File name of each figure :func:`write_inspection` writes."""
    return {"waveform": "waveform.png", "mfcc": "mfcc.png", "posteriorgram": "posteriorgram.png",
            "gates": f"gates_layer{layer}_{direction}.png"}


def write_inspection(insp: Inspection, out_dir: str | os.PathLike, *, top_k: int = 12, name: str = "",
                     dpi: int = 100) -> dict:
    """Write the figures and ``inspect.json`` for one :class:`Inspection`; returns the summary.

    Args:
        top_k: units shown in the gate figure: those whose hidden output varies most over the
            utterance (:func:`asr.analysis.gates.top_units`).
        name: the utterance's name for figure titles (e.g. the audio file name).
        dpi: figure resolution.

    Returns:
        The summary written to ``inspect.json``: transcript, timed words, the traced layer,
        the units shown with their statistics, and the figure files.
    """
    if top_k < 1:
        raise ConfigError(f"top_k={top_k}: must be at least 1")
    out = Path(out_dir)
    hidden = torch.from_numpy(insp.trace["hidden"])  # (T, H)
    units = top_units(hidden, top_k).tolist() if len(hidden) else list(range(min(top_k, hidden.shape[1])))
    names = figure_names(insp.layer, insp.direction)
    tag = f"{name}: " if name else ""
    layer_desc = (f"layer {insp.layer} (of 0–{insp.num_layers - 1}), {insp.direction} {insp.rnn_type.upper()}, "
                  f"top {len(units)} of {hidden.shape[1]} units by variation of h")
    figures = {
        "waveform": waveform_figure(insp.wave, insp.sample_rate_hz, insp.words,
                                    f'{tag}waveform, recognised "{insp.text}" (word spans from the greedy CTC path)'),
        "mfcc": mfcc_figure(insp.mfcc, insp.mfcc_shift_s),
        "posteriorgram": posteriorgram_figure(insp.posteriors, insp.path, insp.vocab, insp.frame_shift_s,
                                              insp.words, f"{tag}CTC posteriorgram and greedy path"),
        "gates": gates_figure(insp.trace, units, insp.frame_shift_s, words=insp.words, title=f"{tag}{layer_desc}"),
    }
    for key, fig in figures.items():
        save_figure(fig, out / names[key], dpi=dpi)
    summary = {
        "audio": name, "duration_s": len(insp.wave) / insp.sample_rate_hz, "text": insp.text,
        "words": [w.to_dict() for w in insp.words], "frames": len(insp.path), "frame_shift_s": insp.frame_shift_s,
        "layer": insp.layer, "num_layers": insp.num_layers, "direction": insp.direction, "rnn_type": insp.rnn_type,
        "recompute_max_abs_error": insp.recompute_error,
        "units": [{"unit": u, "hidden_std": float(hidden[:, u].std(unbiased=False)) if len(hidden) else 0.0,
                   "mean": {k: float(v[:, u].mean()) if len(v) else 0.0 for k, v in insp.trace.items()}}
                  for u in units],
        "figures": names,
    }
    atomic_write_text(out / "inspect.json", json.dumps(summary, indent=2) + "\n")
    return summary
