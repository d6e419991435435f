"""Front-end settings (:class:`FeatureConfig`), importable without torch.

The config schema, an ONNX export's metadata reader and ``asr transcribe runtime=onnx`` validate
feature settings without running the torch front end; :mod:`asr.frontend.features` re-exports both
names, so either import works.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CMN_MODES = ("none", "utterance")  # features.cmn: off, or each utterance minus its own mean


@dataclass(frozen=True)
class FeatureConfig:
    """Front-end settings. Defaults: 40 MFCC from 40 mel bands, 25 ms / 10 ms, ×3 stacking."""

    sample_rate_hz: int = 16000
    n_mfcc: int = 40  # EESEN / Graves use 40 (13 + deltas is the GMM-era choice)
    n_mels: int = 40
    win_length_ms: float = 25.0
    hop_length_ms: float = 10.0
    n_fft: int | None = None  # None: the window length (frames span exactly 25 ms, as in Kaldi)
    f_min_hz: float = 20.0  # below 20 Hz is rumble, not speech
    f_max_hz: float | None = None  # None: Nyquist
    deltas: int = 0  # 0: static only, 1: + deltas, 2: + delta-deltas
    stack: int = 3  # frames concatenated per output frame
    subsample: int = 3  # keep every 3rd stacked frame: 10 ms → 30 ms, 3x fewer LSTM steps
    # "utterance": subtract each utterance's mean MFCC (over its own frames) before the global
    # normalisation. A gain or a fixed microphone/channel response adds a constant to every
    # frame's cepstrum, so this cancels them; "none" keeps absolute levels.
    cmn: str = "none"

    def __post_init__(self):
        checks = {
            "sample_rate_hz": self.sample_rate_hz > 0,
            "n_mfcc": 0 < self.n_mfcc <= self.n_mels,
            "n_mels": self.n_mels > 0,
            "win_length_ms": self.win_length_ms > 0,
            "hop_length_ms": 0 < self.hop_length_ms <= self.win_length_ms,
            "n_fft": self.n_fft is None or self.n_fft >= self.win_length,
            "f_min_hz": 0 <= self.f_min_hz < (self.f_max_hz or self.sample_rate_hz / 2),
            "f_max_hz": self.f_max_hz is None or self.f_max_hz <= self.sample_rate_hz / 2,
            "deltas": self.deltas in (0, 1, 2),
            "stack": self.stack >= 1,
            "subsample": 1 <= self.subsample <= self.stack,
            "cmn": self.cmn in CMN_MODES,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid feature settings: {', '.join(f'features.{k}={getattr(self, k)!r}' for k in bad)}"
                             " (need 0 < n_mfcc <= n_mels, hop <= window, n_fft >= window samples, "
                             "f_min < f_max <= sample_rate/2, deltas in 0..2, 1 <= subsample <= stack, "
                             "cmn none or utterance)")

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return int(round(self.win_length_ms * self.sample_rate_hz / 1000))

    @property
    def hop_length(self) -> int:
        """Frame shift in samples."""
        return int(round(self.hop_length_ms * self.sample_rate_hz / 1000))

    @property
    def fft_length(self) -> int:
        """Samples one frame spans (torch.stft centres a shorter window inside ``n_fft``)."""
        return self.n_fft or self.win_length

    @property
    def frame_dim(self) -> int:
        """Size of one MFCC frame before stacking."""
        return self.n_mfcc * (1 + self.deltas)

    @property
    def output_dim(self) -> int:
        """Size of one output frame, after stacking: the acoustic model's input size."""
        return self.frame_dim * self.stack

    @property
    def output_frame_shift_s(self) -> float:
        """Seconds between output frames, after subsampling (30 ms by default)."""
        return self.hop_length_ms * self.subsample / 1000

    def to_dict(self) -> dict:
        """The settings as a plain dict, as model files and ``stats.pt`` store them."""
        return asdict(self)
