"""Typed settings for every config group, and strict conversion from plain dicts.

Hydra composes YAML into a ``DictConfig``; :func:`from_dict` turns one group into one of
these dataclasses, checking every key and type and naming the offending key
(``model.hidden_size: expected int, got 'abc'``). The same check runs on configs read
back from model files, which are therefore validated, never executed: nothing here
instantiates a class named in a config. A ``_target_`` key is accepted only when it names
``asr.*`` or one of :data:`ALLOWED_TARGETS` (and is still never instantiated), so a config
that names any other callable is refused wherever it comes from.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from asr.data.tokenizer import TOKENIZERS
from asr.decoding.rules import check_decoder_files
from asr.frontend.config import CMN_MODES, FeatureConfig


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type, or impossible; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    """Corpus and batching.

    ``max_batch_duration_s`` caps the *padded* audio in one batch (longest × count), so
    memory per batch stays bounded whatever the length mix.
    """

    name: str = "custom"
    # a JSONL file, a glob pattern (shards/train-*.jsonl) or a list of either (see asr.data.manifest.manifest_files)
    train_manifest: str | list[str] | None = None
    # one sampling weight per train_manifest entry: 0.5 draws half that corpus each epoch, 2 takes it twice
    train_weights: list[float] | None = None
    # picks the best epoch (WER over all its utterances; a list also logs each set's WER); the test set is
    # scored by `asr evaluate`
    dev_manifest: str | list[str] | None = None
    vocab: str | None = None  # vocab.json written by `asr stats`; None: built from training text
    # output units: char | bpe | unigram (sentencepiece subwords; how to choose: docs/model-and-decoding.md)
    tokenizer: str = "char"
    vocab_size: int = 256  # bpe / unigram pieces, <unk> included; the model has one more output (the blank)
    stats: str | None = None  # stats.pt written by `asr stats`; None: computed before training
    max_batch_duration_s: float = 160.0  # 50-60 AN4 utterances per batch: fast on CPU, fits any GPU
    max_duration_s: float = 30.0  # longer training utterances are dropped (named in the log)
    min_duration_s: float = 0.1
    num_workers: int = 0  # decoding workers; 0 is best for small, preloaded corpora
    preload: bool = True  # decode all training audio once and keep it in memory (int16)
    sort_jitter: float = 0.1  # relative duration noise when forming batches, so batches change per epoch
    sortagrad_epochs: int = 0  # first N epochs in ascending duration order (SortaGrad)
    validate: bool = True  # check the manifests before training; fatal problems stop it (asr.data.validate)
    # DDP with a sharded train manifest: rank r reads only files[r::world_size], so no rank reads all metadata
    # (needs data.vocab and data.stats from asr-stats); false: every rank reads every file
    rank_shards: bool = False

    def __post_init__(self):
        if self.tokenizer != "char" and self.vocab_size < 2:
            raise ValueError(f"data.vocab_size must be >= 2 for data.tokenizer={self.tokenizer}, got {self.vocab_size}")


@dataclass(frozen=True)
class ModelConfig:
    """Acoustic model size and kind (see :class:`asr.models.acoustic.AcousticModel`)."""

    rnn_type: str = "lstm"
    hidden_size: int = 320
    num_layers: int = 4
    bidirectional: bool = True
    dropout: float = 0.2
    proj_size: int = 0  # LSTM projection of each direction's output to this size (LSTMP, Sak et al. 2014); 0: none
    edge_pad_s: float = 0.0  # at inference, quiet background added at both ends of every utterance (Recognizer)
    # latency-controlled bidirectional layers (LC-BLSTM): > 0 cuts every utterance into chunks of this many
    # seconds; the backward direction sees only its chunk plus right_context_s, so the model can stream
    # (docs/streaming.md). 0: full context, each frame sees the whole utterance
    chunk_s: float = 0.0
    right_context_s: float = 0.0  # look-ahead of each chunk's backward direction (needs chunk_s > 0)
    # LSTM only: every forget gate's initial bias (1.0 keeps ~73 % of the cell state per frame at the start, where
    # PyTorch's init, centred on 0, keeps half); null: PyTorch's init
    forget_bias: float | None = None


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine (or exponential) decay."""

    name: str = "adamw"
    lr: float = 1.5e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 200
    schedule: str = "cosine"  # cosine | exponential | constant
    final_lr_ratio: float = 0.05  # learning rate at the last step, relative to lr
    grad_clip: float = 5.0


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (never at evaluation), each part switchable on its own.

    SpecAugment masks normalised 10 ms frames; speed, noise and volume change the waveform
    (:mod:`asr.data.augment`), drawn from ``(trainer.seed, epoch, utterance)`` so resume is exact.
    """

    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
    max_time_ratio: float = 0.2
    speed_perturb: bool = False
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)  # drawn uniformly per utterance and epoch
    noise: bool = False
    noise_prob: float = 0.5  # share of utterances that get noise
    noise_snr_db: tuple[float, float] = (10.0, 30.0)  # SNR drawn uniformly in this range
    volume: bool = False
    volume_gain_db: tuple[float, float] = (-10.0, 6.0)  # gain drawn uniformly in this range
    reverb: bool = False
    reverb_prob: float = 0.3  # share of utterances played in a synthetic room
    reverb_rt60_s: tuple[float, float] = (0.2, 0.8)  # RT60 drawn uniformly in this range
    reverb_drr_db: tuple[float, float] = (0.0, 10.0)  # direct-to-reverberant ratio drawn in this range
    # recording chain (asr.data.recording): each part's share of utterances; 0 is off
    silence_prob: float = 0.0  # silent ends trimmed (to silence_keep_s margins) or padded (by silence_pad_s)
    silence_keep_s: tuple[float, float] = (0.0, 0.3)
    silence_pad_s: tuple[float, float] = (0.0, 0.5)
    babble_prob: float = 0.0  # other training speakers talking at once
    babble_snr_db: tuple[float, float] = (5.0, 20.0)
    babble_talkers: tuple[int, int] = (2, 6)
    tilt_prob: float = 0.0  # another microphone's colour: spectral tilt in dB per octave around 1 kHz
    tilt_db_per_octave: tuple[float, float] = (-4.0, 4.0)
    bandlimit_prob: float = 0.0  # recorded at a lower rate (nothing above its Nyquist frequency)
    bandlimit_rates_hz: tuple[int, ...] = (8000,)
    codec_prob: float = 0.0  # through a telephone or low-bit-rate codec (one of codecs)
    codecs: tuple[str, ...] = ("ulaw", "alaw", "gsm", "mp3", "opus")
    # rooms and the recording chain start at this epoch (0-based): before it the network leaves CTC's
    # all-blank start on near-clean audio (with the chain from epoch 0 it was still there at epoch 20)
    chain_from_epoch: int = 0
    # every part (SpecAugment, speed, noise, volume, rooms, the chain) starts at this epoch (0-based): before
    # it the network trains on the audio as recorded (a small corpus leaves CTC's all-blank start sooner)
    from_epoch: int = 0

    def wave_augment(self, sample_rate_hz: int = 16000):
        """The waveform part as an :class:`asr.data.augment.WaveAugment` (inactive when all parts are off)."""
        from asr.data.augment import WaveAugment

        return WaveAugment(speeds=self.speeds if self.speed_perturb else (),
                           noise_prob=self.noise_prob if self.noise else 0.0, noise_snr_db=self.noise_snr_db,
                           volume_gain_db=self.volume_gain_db if self.volume else None,
                           reverb_prob=self.reverb_prob if self.reverb else 0.0, reverb_rt60_s=self.reverb_rt60_s,
                           reverb_drr_db=self.reverb_drr_db, sample_rate_hz=sample_rate_hz,
                           from_epoch=self.from_epoch, **{k: getattr(self, k) for k in _CHAIN_KEYS})


_CHAIN_KEYS = ("silence_prob", "silence_keep_s", "silence_pad_s", "babble_prob", "babble_snr_db", "babble_talkers",
               "tilt_prob", "tilt_db_per_octave", "bandlimit_prob", "bandlimit_rates_hz", "codec_prob", "codecs",
               "chain_from_epoch")


@dataclass(frozen=True)
class TrainerConfig:
    max_epochs: int = 40
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0: the cores that are free right now
    resume: bool = False  # continue from checkpoints/last.pt in the run directory
    overwrite: bool = False  # replace a finished run in the run directory (otherwise refused, naming what is there)
    log_every_steps: int = 10
    checkpoint_every_steps: int = 0  # also save checkpoints/last.pt mid-epoch every N steps (0: epoch ends only)
    eval_every_epochs: int = 1
    keep_checkpoints: int = 3  # epoch checkpoints kept besides last.pt and the best model
    max_nonfinite_steps: int = 20  # consecutive non-finite updates before a run stops as diverged (0: never)
    progress: bool = True  # console progress bar
    tensorboard: bool = True
    average_last: int = 0  # also write model_avg.pt, the weight average of the last N epochs (0 or 1: off)


@dataclass(frozen=True)
class DecoderConfig:
    """How CTC posteriors become text (see :mod:`asr.decoding.ctc`).

    ``greedy``: best path. ``beam``: prefix beam search over characters, no lexicon or LM.
    ``beam_lm``: words from ``lexicon`` only, scored with the KenLM n-gram ``lm``
    (``lm_weight`` × LM log-probability + ``word_score`` per word + acoustic score).
    ``beam_cuda``: torchaudio's CUDA prefix beam search (no lexicon or LM; GPU only).
    """

    name: str = "greedy"  # greedy | beam | beam_lm | beam_cuda
    beam_size: int = 50  # hypotheses kept per frame
    beam_size_token: int | None = None  # tokens tried per frame; null: all of them
    beam_threshold: float = 25.0  # drop hypotheses this far (log score) below the best
    lm_weight: float = 0.0
    word_score: float = 0.0  # added per word: > 0 favours more words, < 0 fewer
    sil_score: float = 0.0  # added per word boundary (space) token
    log_add: bool = True  # merge equal prefixes by summing their probabilities (not max)
    lexicon: str | None = None  # lexicon.txt from `asr build-lm` (word, then its characters)
    lm: str | None = None  # KenLM model: ARPA or build_binary output
    blank_skip_threshold: float = 0.95  # beam_cuda: skip frames whose blank probability is above this

    def options(self) -> dict:
        """Keyword arguments for :func:`asr.decoding.ctc.build_decoder` (none for greedy)."""
        if self.name == "greedy":
            return {}
        if self.name == "beam_cuda":
            return {"beam_size": self.beam_size, "blank_skip_threshold": self.blank_skip_threshold}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "blank_skip_threshold")}


GROUPS: dict[str, type] = {
    "data": DataConfig,
    "features": FeatureConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "augment": AugmentConfig,
    "trainer": TrainerConfig,
    "decoder": DecoderConfig,
}

CHOICES: dict[str, tuple[str, ...]] = {
    "data.tokenizer": TOKENIZERS,
    "model.rnn_type": ("lstm", "gru"),
    "features.cmn": CMN_MODES,
    "optim.name": ("adamw", "adam", "sgd"),
    "optim.schedule": ("cosine", "exponential", "constant"),
    "decoder.name": ("greedy", "beam", "beam_lm", "beam_cuda"),
}


# torch classes a config may name (the optimizers and schedulers asr.training.optim builds); anything else must be asr.*
ALLOWED_TARGETS = (
    "torch.optim.AdamW", "torch.optim.Adam", "torch.optim.SGD",
    "torch.optim.lr_scheduler.LambdaLR", "torch.optim.lr_scheduler.CosineAnnealingLR",
    "torch.optim.lr_scheduler.ExponentialLR", "torch.optim.lr_scheduler.LinearLR",
)
_ASR_NAME = re.compile(r"asr(\.[A-Za-z][A-Za-z0-9_]*)+")  # no private or dunder parts


def check_target(value: Any, key: str) -> None:
    """Refuse a ``_target_`` that is not ``asr.*`` or in :data:`ALLOWED_TARGETS`."""
    if not isinstance(value, str) or not (value in ALLOWED_TARGETS or _ASR_NAME.fullmatch(value)):
        raise ConfigError(f"{key}: {value!r} is not allowed; a _target_ must name asr.* or one of "
                          f"{', '.join(ALLOWED_TARGETS)}")


def check_targets(cfg: Any, prefix: str = "config") -> None:
    """:func:`check_target` on every ``_target_`` in a nested dict/list config."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            key = f"{prefix}.{k}"
            if k == "_target_":
                check_target(v, key)
            check_targets(v, key)
    elif isinstance(cfg, (list, tuple)):
        for i, v in enumerate(cfg):
            check_targets(v, f"{prefix}[{i}]")


def _check_type(value: Any, tp: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp):  # a nested group of settings (a command's data:, batch:, ...)
        return from_dict(tp, value, key)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _check_type(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {value!r}")
    if origin is list:
        (arg,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check_type(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple and typing.get_args(tp)[-1] is Ellipsis:  # tuple[float, ...]: any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_check_type(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_check_type(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if args and typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    return getattr(tp, "__name__", str(tp))


def from_dict(cls: type, values: dict | None, prefix: str):
    """Build dataclass ``cls`` from ``values``, rejecting unknown keys and wrong types.

    Raises:
        ConfigError: naming ``prefix.key`` and what was expected.
    """
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{prefix}: expected a group of settings, got {values!r}")
    values = dict(values or {})
    check_targets(values, prefix)
    values.pop("_target_", None)  # an allowed class name, for the record; the dataclass is what gets built
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    dotted = (lambda k: f"{prefix}.{k}") if prefix else str  # prefix "": a command's top-level settings
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(dotted(k) for k in unknown)}; "
                          f"allowed: {', '.join(names)}")
    missing = [dotted(f.name) for f in dataclasses.fields(cls) if f.name not in values and _required(f)]
    if missing:
        raise ConfigError(f"missing required setting(s): {', '.join(f'{k}=...' for k in missing)}")
    kwargs = {}
    for name in names:
        if name in values:
            key = dotted(name)
            kwargs[name] = _check_type(values[name], hints[name], key)
            allowed = CHOICES.get(key)
            if allowed and kwargs[name] not in allowed:
                raise ConfigError(f"{key}: {kwargs[name]!r} is not one of {', '.join(allowed)}")
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


MISSING = "???"  # OmegaConf's mark for a value the user must give (``model=???``)


def defaults_dict(cls: type, exclude: tuple[type, ...] = ()) -> dict:
    """The defaults of dataclass ``cls`` as a plain nested dict: what Hydra's ConfigStore holds for it.

    A field without a default becomes ``"???"`` (required), a nested dataclass its own dict, a
    tuple a list. Fields whose type is in ``exclude`` are left out (a config group fills them).
    Plain dicts, not structured configs, so :func:`from_dict` stays the one validator (OmegaConf's
    structured configs know neither ``str | list[str]`` nor ``tuple[float, ...]``).
    """
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if tp in exclude:
            continue
        if dataclasses.is_dataclass(tp) and _required(f):
            out[f.name] = defaults_dict(tp)
        elif _required(f):
            out[f.name] = MISSING
        else:
            value = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            out[f.name] = _plain(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


# Keys that model files written by earlier versions carry and nothing reads any more: accepted (and
# dropped) when a stored config is read back, refused on the command line like any unknown key.
RETIRED = {"data": ("test_manifest",)}


def without_retired(cfg: dict) -> dict:
    """``cfg`` (a stored training config) without the :data:`RETIRED` keys."""
    out = dict(cfg)
    for group, keys in RETIRED.items():
        if isinstance(out.get(group), dict):
            out[group] = {k: v for k, v in out[group].items() if k not in keys}
    return out


def check_positive(obj, prefix: str, *names: str) -> None:
    bad = [n for n in names if getattr(obj, n) <= 0]
    if bad:
        raise ConfigError(", ".join(f"{prefix}.{n} must be > 0, got {getattr(obj, n)!r}" for n in bad))


def check_non_negative(obj, prefix: str, *names: str) -> None:
    bad = [n for n in names if getattr(obj, n) < 0]
    if bad:
        raise ConfigError(", ".join(f"{prefix}.{n} must be >= 0, got {getattr(obj, n)!r}" for n in bad))


def check_interval(value: float, key: str, low: float, high: float, *, low_open: bool = False,
                   high_open: bool = True) -> None:
    """``value`` must lie in the interval; the message shows it as ``[low, high)`` etc."""
    ok = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{key} must be in {interval}, got {value!r}")


def check_train_weights(d: DataConfig) -> None:
    """``data.train_weights``: one positive, finite weight per ``data.train_manifest`` entry, not with rank shards."""
    w = d.train_weights
    if w is None:
        return
    entries = d.train_manifest if isinstance(d.train_manifest, list) else [d.train_manifest]
    if len(w) != len(entries) or d.train_manifest is None:
        raise ConfigError(f"data.train_weights: {len(w)} weight(s) for {len(entries) if d.train_manifest else 0} "
                          "data.train_manifest entries; give one per entry, e.g. "
                          "data.train_manifest=[a.jsonl,b.jsonl] data.train_weights=[1,0.5]")
    bad = [x for x in w if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 100]
    if bad:
        raise ConfigError(f"data.train_weights: weights must be numbers in (0, 100], got {bad[0]!r}")
    if d.rank_shards:
        raise ConfigError("data.train_weights cannot be combined with data.rank_shards=true (each rank would "
                          "weight only its own shards); use one or the other")


def check_latency_control(m: ModelConfig, f: FeatureConfig) -> None:
    """``model.chunk_s`` / ``model.right_context_s``: whole model frames, on a bidirectional model only."""
    check_interval(m.chunk_s, "model.chunk_s", 0, 60, high_open=False)
    check_interval(m.right_context_s, "model.right_context_s", 0, 60, high_open=False)
    shift = f.output_frame_shift_s
    if m.chunk_s and not m.bidirectional:
        raise ConfigError("model.chunk_s needs model.bidirectional=true: a unidirectional model already streams "
                          "(it has no backward direction to limit); set model.chunk_s=0")
    if m.right_context_s and not m.chunk_s:
        raise ConfigError(f"model.right_context_s ({m.right_context_s}) needs model.chunk_s > 0 (the look-ahead "
                          "of each chunk)")
    if m.chunk_s and m.chunk_s < shift - 1e-9:
        raise ConfigError(f"model.chunk_s ({m.chunk_s}) must be at least one model frame ({shift:g} s)")


def check_decoder(d: DecoderConfig) -> DecoderConfig:
    """Reject decoder settings that cannot work together; the message names the key."""
    check_positive(d, "decoder", "beam_size", "beam_threshold")
    if d.beam_size_token is not None and d.beam_size_token < 1:
        raise ConfigError(f"decoder.beam_size_token must be > 0 or null, got {d.beam_size_token}")
    try:
        check_decoder_files(d.name, d.lexicon, d.lm)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if not 0.0 <= d.blank_skip_threshold <= 1.0:
        raise ConfigError(f"decoder.blank_skip_threshold must be in [0, 1], got {d.blank_skip_threshold}")
    return d


def check_augment(a: AugmentConfig, sample_rate_hz: int) -> None:
    """Ranges, probabilities and speeds of ``augment``, and the waveform augmentation they build."""
    for key in ("noise_snr_db", "volume_gain_db", "reverb_rt60_s", "reverb_drr_db"):
        low, high = getattr(a, key)
        if low > high:
            raise ConfigError(f"augment.{key}: range [{low}, {high}] has its low end above its high end")
    if a.reverb_rt60_s[0] <= 0:
        raise ConfigError(f"augment.reverb_rt60_s: RT60 must be > 0 s, got {list(a.reverb_rt60_s)}")
    for key in ("noise_prob", "reverb_prob", "silence_prob", "babble_prob", "tilt_prob", "bandlimit_prob",
                "codec_prob"):
        check_interval(getattr(a, key), f"augment.{key}", 0, 1, high_open=False)
    try:
        a.wave_augment(sample_rate_hz)
    except ValueError as err:
        raise ConfigError(f"augment: {err}") from None
    if not a.speeds or any(v <= 0 for v in a.speeds):
        raise ConfigError(f"augment.speeds must be positive factors, got {list(a.speeds)}")


@dataclass(frozen=True)
class Settings:
    """All groups of a training config, validated."""

    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    @classmethod
    def from_dict(cls, cfg: dict, groups: tuple[str, ...] = tuple(GROUPS)) -> Settings:
        """Validate the named groups of a plain (resolved) config dict."""
        if not isinstance(cfg, dict):
            raise ConfigError(f"expected a config of groups {', '.join(GROUPS)}, got {type(cfg).__name__}")
        parts = {g: from_dict(GROUPS[g], cfg.get(g), g) for g in groups}
        s = cls(**parts)
        check_positive(s.model, "model", "hidden_size", "num_layers")
        check_interval(s.model.dropout, "model.dropout", 0, 1)
        check_interval(s.model.edge_pad_s, "model.edge_pad_s", 0, 5, high_open=False)
        check_latency_control(s.model, s.features)
        check_positive(s.optim, "optim", "lr", "grad_clip")
        check_non_negative(s.optim, "optim", "weight_decay", "warmup_steps")
        check_interval(s.optim.final_lr_ratio, "optim.final_lr_ratio", 0, 1, low_open=True, high_open=False)
        for i, beta in enumerate(s.optim.betas):
            check_interval(beta, f"optim.betas[{i}]", 0, 1)
        check_positive(s.data, "data", "max_batch_duration_s", "max_duration_s")
        check_non_negative(s.data, "data", "min_duration_s", "num_workers")
        check_interval(s.data.sort_jitter, "data.sort_jitter", 0, 1)
        check_non_negative(s.augment, "augment", "freq_masks", "freq_width", "time_masks", "time_width")
        check_interval(s.augment.max_time_ratio, "augment.max_time_ratio", 0, 1, high_open=False)
        check_positive(s.trainer, "trainer", "max_epochs", "log_every_steps", "eval_every_epochs")
        check_non_negative(s.trainer, "trainer", "threads", "checkpoint_every_steps", "keep_checkpoints",
                           "max_nonfinite_steps")
        if s.data.min_duration_s >= s.data.max_duration_s:
            raise ConfigError(f"data.min_duration_s ({s.data.min_duration_s}) must be below data.max_duration_s "
                              f"({s.data.max_duration_s})")
        check_train_weights(s.data)
        check_decoder(s.decoder)
        from asr.models.acoustic import check_projection  # here: the model module imports torch, the schema must not

        try:
            check_projection(s.model.rnn_type, s.model.hidden_size, s.model.proj_size)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if s.model.forget_bias is not None:
            check_interval(s.model.forget_bias, "model.forget_bias", -10, 10, high_open=False)
            if s.model.rnn_type != "lstm":
                raise ConfigError(f"model.forget_bias={s.model.forget_bias} is an LSTM setting; "
                                  f"model.rnn_type={s.model.rnn_type} has no forget gate (set model.forget_bias=null)")
        check_augment(s.augment, s.features.sample_rate_hz)
        if s.trainer.average_last < 0 or s.trainer.average_last > max(1, s.trainer.keep_checkpoints):
            raise ConfigError(f"trainer.average_last ({s.trainer.average_last}) must be in 0..trainer.keep_checkpoints "
                              f"({s.trainer.keep_checkpoints}): only kept epoch checkpoints can be averaged")
        if s.trainer.average_last > max(1, s.trainer.max_epochs):
            raise ConfigError(f"trainer.average_last ({s.trainer.average_last}) is more than trainer.max_epochs "
                              f"({s.trainer.max_epochs}): the run would end without that many epochs to average")
        if s.data.max_duration_s > s.data.max_batch_duration_s:
            raise ConfigError(f"data.max_duration_s ({s.data.max_duration_s}) is larger than "
                              f"data.max_batch_duration_s ({s.data.max_batch_duration_s}): such utterances "
                              "would not fit any batch")
        return s

    def to_dict(self) -> dict:
        return {g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}
