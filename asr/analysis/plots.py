"""Figures: an utterance seen by the model, training curves, a model-size sweep.

The ``*_figure(s)`` functions take plain arrays (time in seconds, WER as a fraction) and
return ``matplotlib.figure.Figure`` objects; :func:`save_figure` writes one as PNG, and
:func:`write_training_curves` does all of it for a run's ``train_log.jsonl`` (read by
:func:`asr.analysis.runs.read_train_log`). Figures are built with the object API, never
``pyplot``, so this module neither needs a display nor changes the backend of a notebook
that imports it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from asr.analysis.runs import read_train_log
from asr.fileio import atomic_open

if TYPE_CHECKING:
    from asr.decoding.alignment import Word

GATE_PANELS = {  # key -> (title, colour map, value range; None: symmetric around 0 from the data)
    "input_gate": ("input gate i (what is written)", "viridis", (0.0, 1.0)),
    "forget_gate": ("forget gate f (what is kept)", "viridis", (0.0, 1.0)),
    "output_gate": ("output gate o (what is shown)", "viridis", (0.0, 1.0)),
    "reset_gate": ("reset gate r", "viridis", (0.0, 1.0)),
    "update_gate": ("update gate z (what is kept)", "viridis", (0.0, 1.0)),
    "candidate": ("candidate", "RdBu_r", (-1.0, 1.0)),
    "cell": ("cell state c", "RdBu_r", None),
    "hidden": ("hidden output h", "RdBu_r", (-1.0, 1.0)),
}
LSTM_PANELS = ("input_gate", "forget_gate", "output_gate", "cell", "hidden")
GRU_PANELS = ("reset_gate", "update_gate", "candidate", "hidden")


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG (parent folders created); returns the path."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    with atomic_open(path, "wb") as f:  # a crash never leaves a half-written figure
        f.write(buf.getbuffer())
    return path


def symbol_label(symbol: str) -> str:
    """A readable tick label for a vocabulary entry (the blank and the space are spelled out)."""
    return {"<blank>": "blank", " ": "space"}.get(symbol, symbol)


def _mark_words(ax, words: Sequence[Word]) -> None:
    """Word labels on a top axis at each word's centre, and dotted lines at its edges."""
    top = ax.secondary_xaxis("top")
    top.set_xticks([w.mid_s for w in words], [w.text for w in words], fontsize=8)
    top.tick_params(length=0)
    for w in words:
        for t in (w.start_s, w.end_s):
            ax.axvline(t, color="0.5", linewidth=0.6, linestyle=":")


def waveform_figure(wave: np.ndarray, sample_rate_hz: int, words: Sequence[Word], title: str = "") -> Figure:
    """The waveform over time with each recognised word's span shaded and labelled.

    Args:
        wave: ``(S,)`` samples; words: timed words (seconds), e.g. from :mod:`asr.decoding.alignment`.
    """
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    ax = fig.add_subplot()
    t = np.arange(len(wave)) / sample_rate_hz
    ax.plot(t, wave, color="0.25", linewidth=0.5)
    peak = float(np.abs(wave).max()) or 1.0
    ax.set_ylim(-1.25 * peak, 1.25 * peak)
    for i, w in enumerate(words):
        ax.axvspan(w.start_s, w.end_s, color="C0" if i % 2 == 0 else "C1", alpha=0.2, linewidth=0)
        ax.text(w.mid_s, 1.1 * peak, w.text, ha="center", va="center", fontsize=10, fontweight="bold")
    ax.set_xlim(0, len(wave) / sample_rate_hz)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("amplitude")
    ax.set_title(title or "waveform and recognised words (spans from the greedy CTC path)")
    return fig


def mfcc_figure(mfcc: np.ndarray, frame_shift_s: float, title: str = "", clip: float = 3.0) -> Figure:
    """Normalised MFCC frames as an image: coefficient over time.

    Args:
        mfcc: ``(T, F)`` normalised features (0 mean, unit variance over the training set).
        frame_shift_s: seconds between frames (0.01).
        clip: colour range ±``clip`` standard deviations (rarer values saturate).
    """
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax = fig.add_subplot()
    T, F = mfcc.shape
    im = ax.imshow(mfcc.T, origin="lower", aspect="auto", cmap="RdBu_r", vmin=-clip, vmax=clip,
                   extent=(0, T * frame_shift_s, -0.5, F - 0.5), interpolation="nearest")
    fig.colorbar(im, ax=ax, pad=0.01, label="normalised value (training σ)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MFCC coefficient")
    ax.set_title(title or f"MFCC after normalisation ({F} per {1000 * frame_shift_s:.0f} ms frame)")
    return fig


def posteriorgram_figure(posteriors: np.ndarray, path: np.ndarray, vocab: Sequence[str], frame_shift_s: float,
                         words: Sequence[Word] = (), title: str = "") -> Figure:
    """CTC posteriors per frame and symbol, with the greedy path marked.

    Args:
        posteriors: ``(T, V)`` probabilities; path: ``(T,)`` greedy symbol per frame.
        vocab: ``V`` symbols, the blank first.
        frame_shift_s: seconds between model frames (0.03).
    """
    T, V = posteriors.shape
    fig = Figure(figsize=(11, max(3.2, 0.2 * V + 1.6)), layout="constrained")  # a row per symbol
    ax = fig.add_subplot()
    im = ax.imshow(posteriors.T, origin="upper", aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0,
                   extent=(0, T * frame_shift_s, V - 0.5, -0.5), interpolation="nearest")
    centres = (np.arange(T) + 0.5) * frame_shift_s
    is_blank = path == 0
    ax.scatter(centres[is_blank], path[is_blank], s=6, color="C0", label="greedy path (blank)")
    ax.scatter(centres[~is_blank], path[~is_blank], s=18, color="C3", label="greedy path (character)")
    ax.set_yticks(range(V), [symbol_label(s) for s in vocab], fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("symbol")
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.colorbar(im, ax=ax, pad=0.01, label="posterior probability")
    if words:
        _mark_words(ax, words)
    ax.set_title(title or "CTC posteriorgram and greedy path")
    return fig


def gates_figure(trace: Mapping[str, np.ndarray], units: Sequence[int], frame_shift_s: float, *,
                 words: Sequence[Word] = (), title: str = "") -> Figure:
    """Gate activations and states of selected units over time, one heat map per quantity.

    Args:
        trace: ``{key: (T, H)}`` from :func:`asr.analysis.gates.trace_layer` (one utterance, valid frames);
            LSTM traces show the input, forget and output gates, the cell and the hidden output,
            GRU traces the reset and update gates, the candidate and the hidden output.
        units: unit indices to show, top row first.
        frame_shift_s: seconds between frames.
    """
    panels = LSTM_PANELS if "cell" in trace else GRU_PANELS
    units = list(units)
    fig = Figure(figsize=(11, len(panels) * (0.9 + 0.16 * len(units)) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True)
    T = next(iter(trace.values())).shape[0]
    for n, (ax, key) in enumerate(zip(axes, panels)):
        name, cmap, limits = GATE_PANELS[key]
        values = trace[key][:, units].T  # (T, H) -> (units, T)
        if limits is None:
            bound = max(float(np.abs(values).max()), 1e-6)
            limits = (-bound, bound)
        im = ax.imshow(values, origin="upper", aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1],
                       extent=(0, T * frame_shift_s, len(units) - 0.5, -0.5), interpolation="nearest")
        ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=7)
        ax.set_ylabel("unit")
        ax.set_title(name, fontsize=10, loc="left")
        fig.colorbar(im, ax=ax, pad=0.01, aspect=8)
        if n == 0 and words:
            _mark_words(ax, words)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title or "gate activations and states")
    return fig


def training_figures(history: Sequence[Mapping]) -> dict[str, Figure]:
    """Training curves from ``train_log.jsonl`` rows: ``{"train_loss", "dev_wer", "learning_rate": Figure}``.

    ``dev_wer`` is left out when no row has a dev WER (no dev set).
    """
    epochs = [h["epoch"] for h in history]
    figs = {}

    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, [h["train_loss"] for h in history], marker=".", color="C0")
    ax.set_yscale("log")  # CTC loss falls by orders of magnitude; a log axis shows the late epochs too
    # label 1-2-5 steps (0.2, 0.5, 1, 2, 5) rather than only the powers of ten
    one_two_five = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")
    ax.yaxis.set_major_formatter(one_two_five)
    ax.yaxis.set_minor_formatter(one_two_five)
    ax.set_xlabel("epoch")
    ax.set_ylabel("CTC loss per target character (log scale)")
    ax.set_title("training loss")
    ax.grid(True, which="both", alpha=0.3)
    figs["train_loss"] = fig

    dev = [h for h in history if h.get("dev_wer") is not None and math.isfinite(h["dev_wer"])]
    if dev:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.add_subplot()
        ax.plot([h["epoch"] for h in dev], [100 * h["dev_wer"] for h in dev], marker=".", color="C3", label="WER")
        if all("dev_cer" in h for h in dev):
            ax.plot([h["epoch"] for h in dev], [100 * h["dev_cer"] for h in dev], marker=".", color="C1",
                    label="CER", alpha=0.7)
        best = min(dev, key=lambda h: h["dev_wer"])
        ax.scatter([best["epoch"]], [100 * best["dev_wer"]], s=80, facecolors="none", edgecolors="k", zorder=3,
                   label=f"best WER {100 * best['dev_wer']:.2f} % (epoch {best['epoch']})")
        ax.set_ylim(0, min(100, 105 * max(h["dev_wer"] for h in dev)))
        ax.set_xlabel("epoch")
        ax.set_ylabel("error rate on dev (%)")
        ax.set_title("dev word / character error rate")
        ax.grid(True, alpha=0.3)
        ax.legend()
        figs["dev_wer"] = fig

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, [h["lr"] for h in history], marker=".", color="C2")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate at epoch end")
    ax.set_title("learning-rate schedule")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.grid(True, alpha=0.3)
    figs["learning_rate"] = fig
    return figs


def wer_vs_params_figure(parameters: Sequence[int], dev_wer: Sequence[float], labels: Sequence[str],
                         groups: Sequence[str], test_wer: Sequence[float | None] = ()) -> Figure:
    """Dev (and test) WER against parameter count, one line per group (e.g. layer count).

    Args:
        parameters: per model; dev_wer, test_wer: fractions (``None``: not evaluated).
        labels: a short name per model (e.g. ``"4×256"``), written next to its point.
        groups: models with the same group are joined by a line, in parameter order.
    """
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.add_subplot()
    test_wer = list(test_wer) or [None] * len(parameters)
    for n, group in enumerate(dict.fromkeys(groups)):
        idx = sorted((i for i, g in enumerate(groups) if g == group), key=lambda i: parameters[i])
        x = [parameters[i] / 1e6 for i in idx]
        ax.plot(x, [100 * dev_wer[i] for i in idx], marker="o", color=f"C{n}", label=group)
        tested = [i for i in idx if test_wer[i] is not None]
        if tested:
            ax.plot([parameters[i] / 1e6 for i in tested], [100 * test_wer[i] for i in tested], marker="s",
                    linestyle="--", color=f"C{n}", markerfacecolor="none")
        for i in idx:
            ax.annotate(labels[i], (parameters[i] / 1e6, 100 * dev_wer[i]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")  # sizes in a sweep grow geometrically (hidden² × layers)
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.5, 1, 2 rather than 5×10⁻¹
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel("parameters (millions, log scale)")
    shown = [100 * w for w in [*dev_wer, *test_wer] if w is not None and w > 0]
    if shown and max(shown) > 4 * min(shown):  # a few failed runs must not flatten the good ones
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # 5, 10, 20, 50 %
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("WER (%, log scale)")
    else:
        ax.set_ylabel("WER (%)")
    ax.set_title("word error rate against model size")
    ax.grid(True, which="both", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", marker="o", label="dev WER (filled, solid)"))
    if any(w is not None for w in test_wer):
        handles.append(Line2D([], [], color="black", marker="s", linestyle="--", markerfacecolor="none",
                              label="test WER (hollow, dashed)"))
    ax.legend(handles=handles, fontsize=8)
    return fig


def write_training_curves(run_dir: str | os.PathLike, out_dir: str | os.PathLike, dpi: int = 100) -> list[Path]:
    """PNG curves (``train_loss.png``, ``dev_wer.png``, ``learning_rate.png``) of a run's ``train_log.jsonl``."""
    figs = training_figures(read_train_log(Path(run_dir) / "train_log.jsonl"))
    return [save_figure(fig, Path(out_dir) / f"{name}.png", dpi=dpi) for name, fig in figs.items()]
