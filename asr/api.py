"""The stable Python API: load a recognizer, transcribe files or arrays, get dataclasses back.

Everything here is plain Python (no Hydra, no config objects), for notebooks, services and
scripts. Its names are the ones ``asr.__all__`` lists; from 0.2.0 on they change only under
semantic versioning (see ``CHANGELOG.md``).

Example:
    >>> from asr import Recognizer  # doctest: +SKIP
    >>> r = Recognizer.load("exp/an4/train/model.pt")  # doctest: +SKIP
    >>> r.transcribe(["a.flac"])[0].text  # doctest: +SKIP
    'yes'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from asr.data.audio import load_audio, resample
from asr.data.dataset import make_batches
from asr.decoding.alignment import Word, best_path, force_align, words_from_path
from asr.decoding.ctc import build_decoder
from asr.inference.backends import RUNTIMES, load_recognizer

__all__ = ["Recognizer", "Transcript", "Word"]

AudioInput = str | os.PathLike | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Transcript:
    """One input's result.

    Attributes:
        text: the transcript (words joined by single spaces).
        words: each word with ``start_s``, ``end_s`` (seconds from the start of the input) and
            ``confidence`` (mean posterior of its characters' frames, 0-1).
        duration_s: the input's duration in seconds.
        source: the file path, or ``"array[i]"`` for the i-th input given as samples.
    """

    text: str
    words: tuple[Word, ...]
    duration_s: float
    source: str

    @property
    def confidence(self) -> float | None:
        """Mean word confidence; None for an empty transcript."""
        return sum(w.confidence for w in self.words) / len(self.words) if self.words else None


class Recognizer:
    """A loaded model, ready to transcribe. Build it with :meth:`load`.

    ``runtime`` is ``"torch"``, ``"torch-int8"`` or ``"onnx"`` (see :mod:`asr.inference.backends`).
    """

    def __init__(self, model, tokenizer, runtime: str, path: str):
        self.model, self.tokenizer, self.runtime, self.path = model, tokenizer, runtime, path

    @classmethod
    def load(cls, path: str | os.PathLike, *, runtime: str = "auto", threads: int = 0) -> Recognizer:
        """Load a model file (``asr train``'s ``model.pt``) or an ``asr export`` ``.onnx`` file.

        Args:
            runtime: ``"auto"`` (``onnx`` for an ``.onnx`` file, else ``torch``), or one of ``RUNTIMES``.
            threads: onnxruntime's CPU threads (0: its default). torch's threads are the process's
                (``torch.set_num_threads``).

        Raises:
            asr.models.checkpoint.ModelFileError: the file is missing, unsafe, or not a model (names it).
        """
        if runtime == "auto":
            runtime = "onnx" if Path(path).suffix == ".onnx" else "torch"
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be auto or one of {', '.join(RUNTIMES)}, got {runtime!r}")
        model, tokenizer = load_recognizer(path, runtime, threads)
        return cls(model, tokenizer, runtime, str(path))

    @property
    def sample_rate_hz(self) -> int:
        """The rate the model listens at; inputs at other rates are resampled."""
        return self.model.features.config.sample_rate_hz

    @property
    def vocab(self) -> list[str]:
        """Output symbols; index 0 is the CTC blank."""
        return list(self.tokenizer.vocab)

    def transcribe(self, audio: AudioInput | Sequence[AudioInput], *, decoder: str = "greedy",
                   sample_rate_hz: int | None = None, max_batch_duration_s: float = 60.0,
                   **decoder_options) -> list[Transcript]:
        """Transcribe audio files and/or sample arrays, in input order.

        Args:
            audio: a path, a 1-D array of samples, or a list of them (a list may mix both).
                Files may be in any format and rate :func:`asr.data.audio.load_audio` reads.
            decoder: ``"greedy"``, ``"beam"`` or ``"beam_lm"`` (then pass ``lexicon=`` and ``lm=``,
                and optionally ``lm_weight``, ``word_score``, ``beam_size``: :class:`asr.config.schema.DecoderConfig`).
            sample_rate_hz: the rate of the arrays given (default: the model's).
            max_batch_duration_s: padded seconds per batch; inputs are batched by length (padding
                never changes a float model's output).

        Word times and confidences come from the CTC frame path of the transcript: the greedy
        path, or for beam decoders the best path that spells their transcript.
        Whole inputs go through the model at once: split hours-long audio first (``asr transcribe``
        cuts long files into windows).
        """
        items = [audio] if isinstance(audio, (str, os.PathLike, np.ndarray, torch.Tensor)) else list(audio)
        waves = [self._samples(a, sample_rate_hz) for a in items]
        sources = [str(a) if isinstance(a, (str, os.PathLike)) else f"array[{i}]" for i, a in enumerate(items)]
        search = build_decoder(decoder, self.tokenizer.vocab, **decoder_options)
        out: dict[int, Transcript] = {}
        rate = self.sample_rate_hz
        for batch in make_batches([len(w) / rate for w in waves], max_batch_duration_s, shuffle=False):
            lens = torch.tensor([len(waves[i]) for i in batch])
            padded = torch.zeros(len(batch), int(lens.max()))
            for k, i in enumerate(batch):
                padded[k, : lens[k]] = torch.from_numpy(waves[i])
            with torch.inference_mode():
                log_probs, lengths = self.model(padded, lens)
            texts = search(log_probs, lengths) if decoder != "greedy" else None
            for k, i in enumerate(batch):
                duration_s = len(waves[i]) / rate
                words = self._words(log_probs[k, : int(lengths[k])], None if texts is None else texts[k])
                # the last 30 ms frame may reach past the end of the audio: a word ends with the audio at the latest
                words = [replace(w, end_s=min(w.end_s, duration_s)) for w in words]
                out[i] = Transcript(" ".join(w.text for w in words), tuple(words), duration_s, sources[i])
        return [out[i] for i in range(len(items))]

    def _samples(self, audio: AudioInput, sample_rate_hz: int | None) -> np.ndarray:
        if isinstance(audio, (str, os.PathLike)):
            return load_audio(audio, self.sample_rate_hz)
        samples = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        if samples.ndim != 1 or not samples.size:
            raise ValueError(f"audio arrays must be 1-D and non-empty, got shape {samples.shape}")
        samples = samples.astype(np.float32)
        rate = sample_rate_hz or self.sample_rate_hz
        return resample(samples, rate, self.sample_rate_hz) if rate != self.sample_rate_hz else samples

    def _words(self, log_probs: torch.Tensor, text: str | None) -> list[Word]:
        """Timed words of one utterance's ``(T, V)`` posteriors: its greedy path, or the path that spells ``text``."""
        ids, posteriors = best_path(log_probs)
        path = ids.tolist()
        if text is not None:
            path = force_align(log_probs, self.tokenizer.encode(" ".join(text.split())))
            if path is None:  # cannot happen for a decoder's own output; if it does, no times to give (NaN)
                return [Word(w, float("nan"), float("nan"), float("nan")) for w in text.split()]
            posteriors = log_probs.gather(-1, torch.tensor(path)[:, None]).squeeze(-1).exp()
        return words_from_path(path, posteriors.tolist(), self.tokenizer.vocab,
                               frame_shift_s=self.model.features.config.output_frame_shift_s,
                               offset_s=getattr(self.model, "time_offset_s", 0.0))
