"""MFCC front end: waveform → normalised, stacked MFCC frames, inside the model.

The front end is part of the model (an ``nn.Module`` with buffers for the
normalisation statistics), so features run on whatever device the model is on and a
model file carries its own feature settings: training/inference mismatch cannot happen.

Every step is exact under padding: frame ``t`` of an utterance depends only on that
utterance's samples, whether it is alone or padded inside a batch. That is why the
framing is ``center=False`` (Kaldi's snip-edges: frames never reach past the end) and
deltas/stacking replicate each utterance's own last frame instead of reading padding.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from asr.frontend.config import CMN_MODES, FeatureConfig  # noqa: F401 - re-exported: the settings live there


def mfcc_frames(num_samples, config: FeatureConfig):
    """MFCC frames (at the hop rate, before stacking) of waveforms of ``num_samples`` samples.

    Snip-edges framing: ``1 + (S - n_fft) // hop``, and at least 1, since a waveform shorter
    than one frame is zero-padded to one. The one frame-count rule of the front end: the
    extractor, :meth:`FeatureExtractor.output_lengths` and the CTC feasibility checks
    (:func:`output_frames_for_duration`) all count through it.

    Args:
        num_samples: an ``int``, or a ``(B,)`` integer tensor.
        config: the front-end settings (``fft_length`` and ``hop_length`` in samples).

    Returns:
        The same type as ``num_samples``. A 1 s signal at 16 kHz with 25 ms / 10 ms framing gives 98.
    """
    frames = 1 + (num_samples - config.fft_length) // config.hop_length  # floor division, also for S < n_fft
    return frames.clamp(min=1) if isinstance(frames, torch.Tensor) else max(1, frames)


def model_frames(num_samples, config: FeatureConfig):
    """Frames the acoustic model sees: ``ceil(mfcc_frames / subsample)``; ``int`` or ``(B,)`` tensor like
    ``num_samples``."""
    # (n + s - 1) // s, not -(-n // s): ONNX's integer Div truncates, so negated floors break in an export
    return (mfcc_frames(num_samples, config) + config.subsample - 1) // config.subsample


def subtract_utterance_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Cepstral mean normalisation: each utterance minus the mean of its own ``lengths`` frames.

    Padding frames neither count towards the mean nor depend on the batch, so an utterance
    gets the same features alone or padded in any batch. ``x``: ``(B, T, F)``; ``lengths``: ``(B,)``, each ≥ 1.
    """
    valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)  # (B, T, 1)
    mean = torch.where(valid, x, 0.0).sum(1, keepdim=True) / lengths.clamp(min=1)[:, None, None].to(x.dtype)
    return x - mean


def replicate_past_end(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Fill frames at or after each length with that utterance's last valid frame.

    Args:
        x: ``(B, T, F)``; lengths: ``(B,)``, each ≥ 1.
    """
    t = torch.arange(x.shape[1], device=x.device)
    idx = torch.minimum(t[None, :], (lengths - 1).clamp(min=0)[:, None])  # (B, T)
    return x.gather(1, idx[:, :, None].expand_as(x))


def regression_deltas(x: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """Regression deltas over time, edges replicated: torchaudio's ``compute_deltas`` on ``(B, T, F)``.

    ``d_t = sum_k k (x_{t+k} - x_{t-k}) / (2 sum_k k^2)`` for ``k = 1..(win_length - 1) // 2``, written
    with shifted slices instead of a grouped convolution so that it also exports to ONNX (the
    convolution's kernel count would depend on the batch). Equal to ``compute_deltas`` up to rounding.
    """
    n = (win_length - 1) // 2
    T = x.shape[1]
    padded = torch.cat([x[:, :1].expand(-1, n, -1), x, x[:, -1:].expand(-1, n, -1)], dim=1)  # (B, T + 2n, F)
    out = sum(k * (padded[:, n + k:n + k + T] - padded[:, n - k:n - k + T]) for k in range(1, n + 1))
    return out / (n * (n + 1) * (2 * n + 1) / 3)


def add_deltas(x: torch.Tensor, lengths: torch.Tensor, order: int, win_length: int = 5) -> torch.Tensor:
    """Append ``order`` orders of regression deltas: ``(B, T, F)`` → ``(B, T, F * (1 + order))``."""
    feats = [x]
    cur = x
    for _ in range(order):
        cur = regression_deltas(replicate_past_end(cur, lengths), win_length)
        feats.append(cur)
    return torch.cat(feats, dim=-1)


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, stack: int, subsample: int):
    """Concatenate ``stack`` consecutive frames, keeping every ``subsample``-th.

    Output frame ``j`` is ``concat(x[j*s], ..., x[j*s + stack - 1])``, with frames past
    an utterance's end replaced by its last frame.

    One row gather with indices computed from the shapes (no unfold, no padding amount
    chosen in Python), so a traced or exported graph stays right for every input length.

    Returns:
        ``(B, ceil(T / s), F * stack)`` and the new lengths ``ceil(lengths / s)``.
    """
    if stack == 1 and subsample == 1:
        return x, lengths
    B, T, F = x.shape
    out_T = (T + subsample - 1) // subsample  # ceil; see model_frames for why not -(-T // s)
    src = (torch.arange(out_T, device=x.device) * subsample)[:, None] + torch.arange(stack, device=x.device)  # (T', k)
    src = torch.minimum(src[None], (lengths.to(x.device) - 1).clamp(min=0)[:, None, None])  # (B, T', k)
    rows = (src + T * torch.arange(B, device=x.device)[:, None, None]).reshape(-1)
    # (B*T, F) rows -> (B, T', k, F) -> (B, T', k * F): frame j's k stacked frames side by side
    stacked = x.reshape(B * T, F).index_select(0, rows).reshape(B, out_T, stack * F)
    return stacked, (lengths + subsample - 1) // subsample


class FeatureExtractor(nn.Module):
    """Waveforms → normalised, stacked MFCC frames.

    Args:
        config: a :class:`FeatureConfig`.

    Shapes:
        ``forward(wave: (B, S), wave_lens: (B,))`` → ``feats: (B, T', F')``, ``feat_lens: (B,)``
        with ``F' = config.output_dim`` and ``T' = ceil(num_frames / subsample)``.

    Example:
        >>> fe = FeatureExtractor(FeatureConfig())
        >>> feats, lens = fe(torch.zeros(1, 16000), torch.tensor([16000]))
        >>> tuple(feats.shape), lens.tolist()  # 98 MFCC frames -> 33 stacked frames
        ((1, 33, 120), [33])
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        c = config
        # MelSpectrogram + DCT is torchaudio's MFCC without its per-utterance top_db clamp,
        # which would make a frame depend on the loudest frame of the whole file.
        # Slaney mel scale and norm: the same filterbank as librosa.feature.mfcc.
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=c.sample_rate_hz, n_fft=c.fft_length, win_length=c.win_length, hop_length=c.hop_length,
            f_min=c.f_min_hz, f_max=c.f_max_hz, n_mels=c.n_mels, center=False, power=2.0,
            mel_scale="slaney", norm="slaney")
        self.register_buffer("dct", torchaudio.functional.create_dct(c.n_mfcc, c.n_mels, norm="ortho"),
                             persistent=False)
        # Global mean/variance normalisation, filled from training-set statistics.
        self.register_buffer("mean", torch.zeros(c.frame_dim))
        self.register_buffer("std", torch.ones(c.frame_dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the global normalisation: ``mean``, ``std`` ``(frame_dim,)``; std is floored at 1e-5."""
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(f"normalisation statistics have shape {tuple(mean.shape)}/{tuple(std.shape)}, "
                             f"features have {self.config.frame_dim} dimensions")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def cepstra(self, wave: torch.Tensor) -> torch.Tensor:
        """Static MFCC of every whole frame: ``wave: (B, S)`` with ``S >= fft_length`` → ``(B, T, n_mfcc)``.

        Frame ``t`` reads samples ``[t * hop, t * hop + fft_length)`` only (snip-edges), which is what lets
        :class:`asr.frontend.streaming.FeatureStream` compute them piece by piece.
        """
        mel = self.melspec(wave)  # (B, n_mels, T)
        logmel = 10.0 * torch.log10(mel.clamp(min=1e-10))
        return torch.matmul(logmel.transpose(1, 2), self.dct)  # (B, T, n_mels) @ (n_mels, n_mfcc)

    def mfcc(self, wave: torch.Tensor, wave_lens: torch.Tensor):
        """Un-normalised MFCC (+ deltas) at the 10 ms frame rate: ``(B, T, frame_dim)``, ``(B,)``."""
        c = self.config
        if wave.shape[-1] < c.fft_length:  # shorter than one frame: pad so the STFT runs
            wave = torch.nn.functional.pad(wave, (0, c.fft_length - wave.shape[-1]))
        feats = self.cepstra(wave)
        lens = mfcc_frames(wave_lens, c)
        if c.cmn == "utterance":
            feats = subtract_utterance_mean(feats, lens)
        if c.deltas:
            feats = add_deltas(feats, lens, c.deltas)
        return feats, lens

    def forward(self, wave: torch.Tensor, wave_lens: torch.Tensor, augment: nn.Module | None = None):
        """``wave: (B, S)``, ``wave_lens: (B,)`` → ``feats: (B, T', output_dim)``, ``feat_lens: (B,)``.

        ``augment`` (e.g. :class:`SpecAugment`) masks the normalised frames before stacking.
        """
        feats, lens = self.mfcc(wave, wave_lens)
        feats = (feats - self.mean) / self.std
        if augment is not None:  # training-time masking on normalised 10 ms frames, before stacking
            feats = augment(feats, lens)
        return stack_frames(feats, lens, self.config.stack, self.config.subsample)

    def output_lengths(self, wave_lens: torch.Tensor) -> torch.Tensor:
        """Frames the acoustic model will see for waveforms of these lengths (no audio needed): ``(B,)``."""
        return model_frames(wave_lens, self.config)


def output_frames_for_duration(config: FeatureConfig, duration_s: float) -> int:
    """Model frames for an utterance of ``duration_s`` seconds (for CTC feasibility checks)."""
    return model_frames(int(round(duration_s * config.sample_rate_hz)), config)


@torch.no_grad()
def accumulate_stats(extractor: FeatureExtractor, batches) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean and standard deviation of un-normalised frames over ``(wave, wave_lens)`` batches.

    Sums are accumulated in float64 over valid frames only (padding never counts).

    Returns:
        ``mean: (frame_dim,)``, ``std: (frame_dim,)``, number of frames.
    """
    total = None
    total_sq = None
    count = 0
    for wave, wave_lens in batches:
        feats, lens = extractor.mfcc(wave, wave_lens)
        mask = (torch.arange(feats.shape[1])[None, :] < lens[:, None])  # (B, T)
        valid = feats[mask].double()  # (N, F)
        s, sq = valid.sum(0), (valid * valid).sum(0)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += valid.shape[0]
    if not count:
        raise ValueError("no frames to compute normalisation statistics from")
    mean = total / count
    var = (total_sq / count - mean * mean).clamp(min=0)
    return mean.float(), var.sqrt().float(), count


class SpecAugment(nn.Module):
    """Time and feature masking (Park et al., 2019) on normalised frames; identity in eval mode.

    Masked values are set to 0, the training mean after normalisation.

    Args:
        freq_masks, freq_width: number of feature-dimension masks and their maximum width.
        time_masks, time_width: number of time masks and their maximum width in frames.
        max_time_ratio: no time mask covers more than this fraction of an utterance.

    Shapes: ``forward(feats: (B, T, F), lengths: (B,))`` → ``(B, T, F)``.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 20,
                 max_time_ratio: float = 0.2):
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width = time_masks, time_width
        self.max_time_ratio = max_time_ratio

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Masked ``feats: (B, T, F)``; time masks stay inside each utterance's ``lengths: (B,)``."""
        if not self.training:
            return feats
        B, T, F = feats.shape
        keep = torch.ones(B, T, F, dtype=torch.bool, device=feats.device)
        f_idx = torch.arange(F, device=feats.device)
        t_idx = torch.arange(T, device=feats.device)
        for _ in range(self.freq_masks):
            width = torch.randint(0, self.freq_width + 1, (B, 1), device=feats.device)
            start = (torch.rand(B, 1, device=feats.device) * (F - width + 1)).long()
            keep &= ~((f_idx >= start) & (f_idx < start + width))[:, None, :]
        max_w = torch.minimum(torch.full_like(lengths, self.time_width),
                              (lengths.float() * self.max_time_ratio).long()).to(feats.device)
        for _ in range(self.time_masks):
            width = (torch.rand(B, device=feats.device) * (max_w + 1).float()).long()[:, None]
            start = (torch.rand(B, 1, device=feats.device) * (lengths.to(feats.device)[:, None] - width + 1)).long()
            keep &= ~((t_idx >= start) & (t_idx < start + width))[:, :, None]
        return feats * keep
