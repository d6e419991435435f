"""Streaming recognition: audio in pieces of any size, partial results as it goes, a final one with word times.

A :class:`StreamingRecognizer` wraps a loaded model whose outputs need bounded future context (a
unidirectional LSTM/GRU, or latency-controlled bidirectional layers, ``model.chunk_s``); it holds no
per-stream state, so one serves any number of streams. Each :class:`Stream` keeps its own:

1. the front end (:class:`asr.frontend.streaming.FeatureStream`), which turns samples into model input
   frames as soon as they are final;
2. frames waiting for a whole *block*: a chunk of ``C`` frames plus the model's ``R`` look-ahead frames
   (a unidirectional model has ``R = 0``, and ``C`` is :attr:`StreamingRecognizer.step_frames`);
3. every layer's forward state at the end of the last chunk;
4. the greedy frame path of the current segment, from which partial text (after every chunk) and the
   final words, times and confidences (:func:`asr.decoding.alignment.words_from_path`) come.

The result equals the same model run offline over the whole file (``asr transcribe``): the same log-posteriors
to float rounding, the same transcript and word times (tested for every streaming model type). A segment
ends at the end of the stream, or, with ``endpoint_blank_s > 0``, after that much of the model's blank output
following a word (a model-blank endpointer: the model itself says nothing more is being said).

Blocks of many streams can run as one forward pass (:func:`run_blocks`), which is what ``asr serve`` does.

Example:
    >>> rec = StreamingRecognizer(*load_model("model.pt")[:2])  # doctest: +SKIP
    >>> stream = rec.open()  # doctest: +SKIP
    >>> for piece in pieces: events = stream.accept(piece)  # doctest: +SKIP
    >>> stream.finish()[-1]["text"]  # doctest: +SKIP
    'abc'
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import torch

from asr.data.tokenizer import CharTokenizer
from asr.decoding.alignment import best_path, is_quiet, words_from_path
from asr.frontend.streaming import FeatureStream, StreamingError
from asr.models.acoustic import Recognizer

__all__ = ["StreamingError", "StreamingRecognizer", "Stream", "final_event", "run_blocks", "front_end_look_ahead_s"]


def front_end_look_ahead_s(cfg) -> float:
    """Audio past the end of a model frame's 30 ms span that its input needs: window overhang, stacking, deltas.

    ``(window - hop) + (stack - subsample) * hop + 2 * deltas * hop`` (15 ms with the defaults).
    """
    hop = cfg.hop_length_ms / 1000
    return (cfg.fft_length / cfg.sample_rate_hz - hop) + (cfg.stack - cfg.subsample) * hop + 2 * cfg.deltas * hop


@dataclass
class Block:
    """One stream's next model input: ``feats: (L, F)``, whose first ``keep`` frames are the chunk's."""

    feats: torch.Tensor
    keep: int


class StreamingRecognizer:
    """A model ready to stream (see the module docstring); shared by all streams, stateless between them.

    Args:
        model: a :class:`asr.models.acoustic.Recognizer` in eval mode (torch runtime).
        tokenizer: its vocabulary.
        step_s: unidirectional models: audio per model call (rounded to whole frames). Shorter gives partial
            results sooner and costs more calls; it changes no result.
        endpoint_blank_s: > 0: end a segment (a final result) after this much blank output following a word.

    Raises:
        StreamingError: the model needs the whole utterance (full-context bidirectional), or its features do.
    """

    streaming = True  # partial results as the audio comes (asr serve also takes full-context models)

    def __init__(self, model: Recognizer, tokenizer: CharTokenizer, *, step_s: float = 0.09,
                 endpoint_blank_s: float = 0.0):
        acoustic = getattr(model, "acoustic", None)
        if acoustic is None or not hasattr(acoustic, "step"):
            raise StreamingError("streaming runs a torch model file (runtime torch), not an export")
        if not acoustic.streamable:
            raise StreamingError("this model is bidirectional with full context: every output frame depends on the "
                                 "whole utterance, so it cannot stream; train one with model.bidirectional=false, "
                                 "or latency-controlled with model.chunk_s=0.4 model.right_context_s=0.2")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.config = model.features.config
        self.frame_shift_s = self.config.output_frame_shift_s
        self.step_frames = max(1, round(step_s / self.frame_shift_s))
        self.chunk_frames = acoustic.chunk_frames or self.step_frames
        self.right_frames = acoustic.right_context_frames
        if endpoint_blank_s < 0:
            raise ValueError(f"endpoint_blank_s must be >= 0, got {endpoint_blank_s}")
        self.endpoint_frames = round(endpoint_blank_s / self.frame_shift_s) if endpoint_blank_s else 0
        FeatureStream(model.features)  # refuses features.cmn=utterance now, not at the first stream

    @property
    def sample_rate_hz(self) -> int:
        return self.config.sample_rate_hz

    @property
    def algorithmic_latency_s(self) -> float:
        """The longest wait, after a frame's audio ends, for all the audio its output depends on.

        The first frame of a chunk waits for the rest of the chunk (``C - 1`` frames), the look-ahead (``R``
        frames) and the front end's look-ahead (:func:`front_end_look_ahead_s`).
        """
        frames = self.chunk_frames - 1 + self.right_frames
        return frames * self.frame_shift_s + front_end_look_ahead_s(self.config)

    def open(self) -> Stream:
        """A new stream (its own state; nothing is shared with other streams but the model)."""
        return Stream(self)

    def initial_states(self) -> list:
        """Every layer's zero forward state for one stream: ``(1, 1, H)`` (GRU) or ``((1, 1, P), (1, 1, H))``."""
        states = []
        for layer in self.model.acoustic.layers:
            rnn = layer.forward_rnn
            h = torch.zeros(1, 1, getattr(rnn, "proj_size", 0) or rnn.hidden_size)
            states.append((h, torch.zeros(1, 1, rnn.hidden_size)) if isinstance(rnn, torch.nn.LSTM) or
                          "LSTM" in type(rnn).__name__ else h)
        return states


class Stream:
    """One audio stream's state. :meth:`accept` pieces of audio, then :meth:`finish`; each returns events.

    Events are dicts: ``{"type": "partial", "segment", "text"}`` after the chunks a piece completed, and
    ``{"type": "final", "segment", "text", "words", "start", "end", "confidence", "end_of_stream"}`` when a
    segment ends; ``words`` are ``asr transcribe``'s word records (``word``, ``start``, ``end``,
    ``confidence``), times in seconds from the start of the stream.
    """

    def __init__(self, recognizer: StreamingRecognizer):
        self.rec = recognizer
        self.features = FeatureStream(recognizer.model.features)
        self.pending = torch.zeros(0, recognizer.config.output_dim)  # frames not yet in a finished chunk
        self.states = recognizer.initial_states()
        self.frames_done = 0  # model frames decoded (global index of the next one)
        self.audio_samples = 0  # samples of the caller's audio (the model's edge padding not counted)
        self.finished = False
        self._segment, self._segment_start = 0, 0
        self._ids: list[int] = []
        self._posteriors: list[float] = []
        self._chars: list[str] = []
        self._blank_run = 0
        self._events: list[dict] = []
        if getattr(recognizer.model, "edge_pad_frames", 0):  # heard before the audio, as offline
            self._add_frames(self.features.push(recognizer.model.edge_noise))

    @property
    def duration_s(self) -> float:
        return self.audio_samples / self.rec.sample_rate_hz

    def accept(self, samples: torch.Tensor) -> list[dict]:
        """``samples: (S,)`` float in [-1, 1] at the model's rate → the events this piece completed."""
        self.feed(samples)
        run_blocks([(self, self.blocks())])
        return self.take_events()

    def finish(self) -> list[dict]:
        """End of the stream: the held-back frames are decoded and the last segment's final result given."""
        self.feed_end()
        run_blocks([(self, self.blocks())])
        return self.take_events()

    def feed(self, samples: torch.Tensor) -> None:
        """Add audio (no model work: that is :meth:`blocks` then :func:`run_blocks`)."""
        if self.finished:
            raise StreamingError("the stream has ended; open a new one")
        samples = torch.as_tensor(samples, dtype=torch.float32).flatten()
        self.audio_samples += samples.numel()
        self._add_frames(self.features.push(samples))

    def feed_end(self) -> None:
        """Mark the end of the audio (the model's edge padding follows, as offline)."""
        if self.finished:
            return
        if getattr(self.rec.model, "edge_pad_frames", 0):
            self._add_frames(self.features.push(self.rec.model.edge_noise))
        self._add_frames(self.features.finish())
        self.finished = True

    def _add_frames(self, frames: torch.Tensor) -> None:
        self.pending = torch.cat([self.pending, frames])

    def blocks(self) -> list[Block]:
        """The model inputs ready now: whole chunks with their look-ahead, and after :meth:`feed_end` the rest."""
        c, r = self.rec.chunk_frames, self.rec.right_frames
        out, used = [], 0
        while len(self.pending) - used >= c + r or (self.finished and len(self.pending) > used):
            feats = self.pending[used:used + c + r]
            out.append(Block(feats, min(c, len(feats))))
            used += out[-1].keep
        self.pending = self.pending[used:]  # the look-ahead frames stay: they start the next chunk
        return out

    def take(self, log_probs: torch.Tensor) -> None:
        """Add one chunk's ``log_probs: (C, V)`` to the frame path; notes a partial (and a final at an endpoint)."""
        ids, posteriors = best_path(log_probs)
        vocab, blank = self.rec.tokenizer.vocab, 0
        prev = self._ids[-1] if self._ids else blank
        for sym in ids.tolist():
            if sym != blank and sym != prev:
                self._chars.append(vocab[sym])
            self._blank_run = self._blank_run + 1 if is_quiet(sym, vocab, blank) else 0
            prev = sym
        self._ids += ids.tolist()
        self._posteriors += posteriors.tolist()
        self.frames_done += len(ids)
        text = " ".join("".join(self._chars).split())
        self._events.append({"type": "partial", "segment": self._segment, "text": text})
        if self.rec.endpoint_frames and text and self._blank_run >= self.rec.endpoint_frames:
            self._events.append(self._close_segment(end_of_stream=False))

    def take_events(self) -> list[dict]:
        """The events since the last call: consecutive partials collapse into the latest; a finished stream's
        last event is its final result."""
        if self.finished and not self.pending.numel() and (not self._events or
                                                           not self._events[-1].get("end_of_stream")):
            self._events.append(self._close_segment(end_of_stream=True))
        events, self._events = self._events, []
        return [e for i, e in enumerate(events)
                if not (e["type"] == "partial" and i + 1 < len(events) and events[i + 1]["type"] == "partial")]

    def _close_segment(self, end_of_stream: bool) -> dict:
        rec = self.rec
        offset_s = self._segment_start * rec.frame_shift_s + getattr(rec.model, "time_offset_s", 0.0)
        words = words_from_path(self._ids, self._posteriors, rec.tokenizer.vocab, frame_shift_s=rec.frame_shift_s,
                                offset_s=offset_s)
        hi = self.duration_s  # a word heard in the edge padding gets the times of the audio that exists
        words = [replace(w, start_s=min(max(w.start_s, 0.0), hi), end_s=min(max(w.end_s, 0.0), hi)) for w in words]
        event = final_event(self._segment, [w.to_dict() for w in words], start_s=max(offset_s, 0.0),
                            end_s=min(offset_s + len(self._ids) * rec.frame_shift_s, hi),
                            confidence=sum(w.confidence for w in words) / len(words) if words else None,
                            end_of_stream=end_of_stream)
        self._segment += 1
        self._segment_start += len(self._ids)
        self._ids, self._posteriors, self._chars, self._blank_run = [], [], [], 0
        return event


def final_event(segment: int, words: list[dict], *, start_s: float, end_s: float, confidence: float | None,
                end_of_stream: bool) -> dict:
    """A segment's ``final`` event (the protocol of :class:`Stream`) from its word records, times in seconds."""
    return {"type": "final", "segment": segment, "text": " ".join(w["word"] for w in words), "words": words,
            "start": round(start_s, 3), "end": round(end_s, 3),
            "confidence": None if confidence is None else round(confidence, 3), "end_of_stream": end_of_stream}


@torch.inference_mode()
def run_blocks(work: list[tuple[Stream, list[Block]]]) -> int:
    """Advance streams by their blocks, batching across streams: returns the number of forward passes.

    A stream's blocks depend on each other (the forward state), so round ``i`` takes every stream's ``i``-th
    block; within a round, blocks of equal length (every whole chunk is ``C + R`` frames) go through the model
    as one batch. Results equal one-stream-at-a-time runs up to float rounding.
    """
    passes, i = 0, 0
    while True:
        this_round = [(s, blocks[i]) for s, blocks in work if i < len(blocks)]
        if not this_round:
            return passes
        by_length: dict[int, list[tuple[Stream, Block]]] = defaultdict(list)
        for s, block in this_round:
            by_length[len(block.feats)].append((s, block))
        for group in by_length.values():
            _forward(group)
            passes += 1
        i += 1


def _forward(group: list[tuple[Stream, Block]]) -> None:
    """One batched model pass over blocks of equal length; each stream takes its rows and states back."""
    acoustic = group[0][0].rec.model.acoustic
    feats = torch.stack([b.feats for _, b in group])  # (B, L, F)
    lengths = torch.full((len(group),), feats.shape[1], dtype=torch.long)
    states = []
    for layer in range(len(acoustic.layers)):  # (1, 1, H) per stream -> (1, B, H)
        per_stream = [s.states[layer] for s, _ in group]
        states.append(tuple(torch.cat(parts, dim=1) for parts in zip(*per_stream))
                      if isinstance(per_stream[0], tuple) else torch.cat(per_stream, dim=1))
    log_probs, new_states = acoustic.step(feats, lengths, states)
    for k, (s, block) in enumerate(group):
        s.states = [tuple(t[:, k:k + 1].clone() for t in st) if isinstance(st, tuple) else st[:, k:k + 1].clone()
                    for st in new_states]  # copies: a stream must not keep the whole batch's tensors alive
        s.take(log_probs[k, :block.keep])
