"""The front end piece by piece: samples in, in pieces of any size; model input frames out as soon as they are final.

Every step of :class:`asr.frontend.features.FeatureExtractor` has a bounded reach, so each can run on a
stream and give the numbers the whole signal gives:

* **Framing.** Snip-edges framing reads frame ``t`` from samples ``[t * hop, t * hop + n_fft)`` only; the
  stream keeps the samples of frames not yet whole and computes each frame once, when its last sample arrives.
* **Deltas.** A regression delta of order ``o`` reads ``2 o`` frames on each side; the stream holds the last
  ``2 o`` static frames back until their right context arrives (or the stream ends, when the offline edge
  rule, the last frame replicated, applies).
* **Normalisation.** Global statistics (``data.stats``, stored in the model) are per frame. ``features.cmn=
  utterance`` subtracts the mean of the *whole* utterance, which a stream knows only at its end; a model
  trained with it is refused for streaming (:class:`StreamingError`) rather than run with a running mean it
  was never trained on.
* **Stacking.** Output frame ``j`` stacks frames ``j * subsample ... j * subsample + stack - 1``; it is given
  when the last of them exists, and at the end with the last frame replicated, as offline.

Example:
    >>> fe = FeatureExtractor(FeatureConfig())
    >>> stream = FeatureStream(fe)
    >>> sum(len(stream.push(torch.zeros(160))) for _ in range(100)) + len(stream.finish())  # 1 s in 10 ms pieces
    33
"""

from __future__ import annotations

import torch

from asr.frontend.features import FeatureConfig, FeatureExtractor, add_deltas


class StreamingError(ValueError):
    """A model or setting that cannot stream; the message says why and what would."""


class _Deltas:
    """Static frames in, frames with ``order`` orders of deltas out, each once its right context exists."""

    def __init__(self, order: int, half_window: int = 2):
        self.order, self.reach = order, half_window * order  # frames each side an output depends on
        self.buf: torch.Tensor | None = None  # (N, F) static frames from global index self.start
        self.start = self.emitted = 0

    def push(self, x: torch.Tensor, final: bool = False) -> torch.Tensor:
        """``x: (N, F)`` new static frames → ``(M, F * (1 + order))`` finished frames."""
        if not self.order:
            return x
        self.buf = x if self.buf is None else torch.cat([self.buf, x])
        n = len(self.buf)
        if not n:
            return x.new_zeros(0, x.shape[1] * (1 + self.order))
        # recomputed over the held frames: an artificial left edge only reaches outputs already given
        full = add_deltas(self.buf[None], torch.tensor([n]), self.order)[0]
        end = self.start + n if final else max(self.emitted, self.start + n - self.reach)
        out = full[self.emitted - self.start:end - self.start]
        self.emitted = end
        drop = max(0, self.emitted - self.reach - self.start)  # keep the left context of outputs to come
        self.buf, self.start = self.buf[drop:], self.start + drop
        return out


class _Stacker:
    """Normalised frames in, stacked and subsampled frames out (:func:`asr.frontend.features.stack_frames`)."""

    def __init__(self, stack: int, subsample: int):
        self.stack, self.subsample = stack, subsample
        self.buf: torch.Tensor | None = None  # (N, F) frames from global index self.start
        self.start = self.next_out = 0

    def push(self, x: torch.Tensor, final: bool = False) -> torch.Tensor:
        """``x: (N, F)`` → ``(M, F * stack)``: every output frame whose inputs all exist (all of them when final)."""
        self.buf = x if self.buf is None else torch.cat([self.buf, x])
        total = self.start + len(self.buf)
        if final:
            last = (total + self.subsample - 1) // self.subsample  # ceil(T / s) frames in all, as offline
        else:
            last = max(self.next_out, (total - self.stack) // self.subsample + 1) if total >= self.stack else 0
        count = max(0, last - self.next_out)
        firsts = (self.next_out + torch.arange(count)) * self.subsample
        idx = (firsts[:, None] + torch.arange(self.stack)[None, :]).clamp(max=max(total - 1, 0))  # (M, stack)
        out = self.buf[idx - self.start].reshape(count, -1) if count else x.new_zeros(0, x.shape[1] * self.stack)
        self.next_out += count
        drop = max(0, min(self.next_out * self.subsample, total) - self.start)
        self.buf, self.start = self.buf[drop:], self.start + drop
        return out


class FeatureStream:
    """One stream's front end: :meth:`push` samples, get the model input frames that are final.

    The frames equal what ``extractor`` gives for the whole signal (up to float rounding), however the
    samples are cut into pieces.

    Args:
        extractor: a model's front end (its settings and normalisation statistics).

    Raises:
        StreamingError: ``features.cmn=utterance`` (see the module docstring).
    """

    def __init__(self, extractor: FeatureExtractor):
        c: FeatureConfig = extractor.config
        if c.cmn == "utterance":
            raise StreamingError("the model was trained with features.cmn=utterance, which subtracts the mean of "
                                 "the whole utterance: a stream does not have it until the audio ends; streaming "
                                 "needs a model trained with features.cmn=none (global statistics)")
        self.extractor, self.config = extractor, c
        self._samples = torch.zeros(0)
        self.samples_seen = 0
        self.mfcc_frames = 0
        self._deltas = _Deltas(c.deltas)
        self._stacker = _Stacker(c.stack, c.subsample)

    @torch.inference_mode()
    def push(self, samples: torch.Tensor) -> torch.Tensor:
        """``samples: (S,)`` float in [-1, 1], any ``S`` → ``(N, output_dim)`` new model input frames."""
        self._samples = torch.cat([self._samples, samples.to(torch.float32).flatten()])
        self.samples_seen += samples.numel()
        return self._frames(self._whole_frames(), final=False)

    @torch.inference_mode()
    def finish(self) -> torch.Tensor:
        """The stream has ended: ``(N, output_dim)`` the frames held back for their right context."""
        c = self.config
        static = self._whole_frames()
        if not self.mfcc_frames and not len(static) and self.samples_seen:  # shorter than one frame, as offline
            padded = torch.nn.functional.pad(self._samples, (0, c.fft_length - len(self._samples)))
            static = self.extractor.cepstra(padded[None])[0]
            self.mfcc_frames = 1
        return self._frames(static, final=True)

    def _whole_frames(self) -> torch.Tensor:
        """Static MFCC ``(N, n_mfcc)`` of the frames whose samples have all arrived; their samples are dropped."""
        c = self.config
        if len(self._samples) < c.fft_length:
            return torch.zeros(0, c.n_mfcc)
        n = 1 + (len(self._samples) - c.fft_length) // c.hop_length
        static = self.extractor.cepstra(self._samples[None, :(n - 1) * c.hop_length + c.fft_length])[0]
        self._samples = self._samples[n * c.hop_length:]
        self.mfcc_frames += n
        return static

    def _frames(self, static: torch.Tensor, final: bool) -> torch.Tensor:
        feats = self._deltas.push(static, final=final)
        feats = (feats - self.extractor.mean) / self.extractor.std
        return self._stacker.push(feats, final=final)
