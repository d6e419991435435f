"""Model files and training checkpoints.

A **model file** is self-describing: weights, the validated config groups that shaped
the model (features, model), the vocabulary, and the normalisation statistics (as
front-end buffers in the weights). A subword model also carries its sentencepiece model
(``tokenizer``: the serialized proto as a uint8 tensor, with its SHA-256), so decoding
needs no file beside it; a character model has no such entry. It holds only tensors and plain Python values, so it
loads with ``torch.load(weights_only=True)``: opening a model file never runs code from
it. A file that needs pickled objects is refused with :class:`ModelFileError`.

A **training checkpoint** adds what exact resume needs: optimizer, scheduler, RNG and
sampler position. Both are written atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from asr import __version__
from asr.config.schema import GROUPS, ConfigError, ModelConfig, Settings, check_targets, without_retired
from asr.data.tokenizer import CharTokenizer, PieceTokenizer, Tokenizer, verified_piece_tokenizer
from asr.fileio import atomic_torch_save
from asr.models.acoustic import Recognizer, build_recognizer

MODEL_FORMAT = "asr-model"
FORMAT_VERSION = 1


class ModelFileError(Exception):
    """A model or checkpoint file is missing, unsafe, or not one of ours; names the file."""


def safe_load(path: str | os.PathLike, map_location="cpu") -> dict:
    """``torch.load`` with ``weights_only=True``; every failure becomes :class:`ModelFileError`."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types; all mean "not loadable safely"
        text = str(err)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        if found or "Unsupported global" in text:  # the weights-only unpickler met a class or function
            what = f" ({found.group(1)})" if found else ""
            raise ModelFileError(f"{path}: refused: the file contains pickled Python objects{what}, which could run "
                                 "code when loaded; only tensors and plain values are accepted") from None
        reason = re.search(r"WeightsUnpickler error: *([^\n]+)", text)  # e.g. random bytes: "Unsupported operand"
        msg = reason.group(1).strip() if reason else text.splitlines()[0] if text else type(err).__name__
        raise ModelFileError(f"{path}: not a loadable model file ({msg})") from None
    if not isinstance(obj, dict):
        raise ModelFileError(f"{path}: expected a dict at top level, got {type(obj).__name__}")
    return obj


def model_bundle(model: Recognizer, vocab: list[str], model_cfg: ModelConfig, *, config: dict | None = None,
                 metrics: dict | None = None, tokenizer: Tokenizer | None = None) -> dict:
    """The contents of a model file (see module docstring); pass ``tokenizer`` for a subword model."""
    extra = {}
    if isinstance(tokenizer, PieceTokenizer):
        if list(vocab) != tokenizer.vocab:
            raise ValueError("model_bundle: vocab is not the tokenizer's")
        extra["tokenizer"] = tokenizer_entry(tokenizer)
    return {**extra,
        "format": MODEL_FORMAT,
        "format_version": FORMAT_VERSION,
        "asr_version": __version__,
        "features": model.features.config.to_dict(),
        "model": {k: getattr(model_cfg, k) for k in ModelConfig.__dataclass_fields__},
        "vocab": list(vocab),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": config or {},  # the full resolved training config, for the record
        "metrics": metrics or {},
    }


def save_model(path: str | os.PathLike, bundle: dict) -> None:
    """Write a :func:`model_bundle` to ``path`` atomically (a reader never sees half a file)."""
    atomic_torch_save(bundle, path)


def load_model(path: str | os.PathLike, map_location="cpu") -> tuple[Recognizer, Tokenizer, dict]:
    """Rebuild a :class:`Recognizer` (eval mode) and its tokenizer from a model file.

    Returns:
        ``(model, tokenizer, bundle)``; the bundle's ``config`` and ``metrics`` describe its training.
    """
    bundle = safe_load(path, map_location)
    return (*model_from_bundle(bundle, str(path)), bundle)


def check_stored_config(cfg) -> None:
    """Validate the training config a model file records against the same schema as ``asr-train``'s.

    Every group must be one of ours with known keys and well-typed values, and any ``_target_``
    must pass :func:`asr.config.schema.check_target`; the config is only read, never instantiated.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"config: expected a dict of setting groups, got {type(cfg).__name__}")
    check_targets(cfg)
    unknown = sorted(set(cfg) - set(GROUPS))
    if unknown:
        raise ConfigError(f"config: unknown group(s) {', '.join(map(str, unknown))}; allowed: {', '.join(GROUPS)}")
    Settings.from_dict(without_retired(cfg), groups=tuple(g for g in GROUPS if g in cfg))  # keys older files carry


def model_from_bundle(bundle: dict, where: str = "model file") -> tuple[Recognizer, Tokenizer]:
    """Rebuild the model (eval mode) and tokenizer a loaded bundle describes, checking it on the way.

    Args:
        bundle: what :func:`safe_load` read from a model file.
        where: how error messages name the file.

    Raises:
        ModelFileError: not a model file, an unsupported format version, invalid settings, or
            weights that do not fit the model they describe.
    """
    if bundle.get("format") != MODEL_FORMAT:
        hint = " (it looks like a training checkpoint: use the run's model.pt)" if "optimizer" in bundle else ""
        raise ModelFileError(f"{where}: not an asr model file{hint}")
    if bundle.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{where}: format version {bundle.get('format_version')!r} is not supported "
                             f"(this asr reads version {FORMAT_VERSION})")
    try:
        shaping = Settings.from_dict({"features": bundle.get("features"), "model": bundle.get("model")},
                                     groups=("features", "model"))  # types, ranges, allowed values
        feat_cfg, model_cfg = shaping.features, shaping.model
        tokenizer = CharTokenizer(bundle.get("vocab") or []) if "tokenizer" not in bundle else None
        check_stored_config(bundle.get("config", {}))
    except (ConfigError, ValueError, TypeError) as err:
        raise ModelFileError(f"{where}: invalid settings inside the model file: {err}") from None
    if tokenizer is None:
        try:
            tokenizer = tokenizer_from_bundle(bundle)
        except (ValueError, TypeError) as err:
            raise ModelFileError(f"{where}: refused: its subword tokenizer is not usable: {err}") from None
    state = bundle.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{where}: 'state_dict' must map names to tensors")
    _check_weights(state, where)
    model = build_recognizer(feat_cfg, len(tokenizer), **vars(model_cfg))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelFileError(f"{where}: weights do not match the model it describes: "
                             f"{str(err).splitlines()[0]}") from None
    return model.eval(), tokenizer


def tokenizer_entry(tokenizer: PieceTokenizer) -> dict:
    """A subword tokenizer as model-file values: ``{"kind", "model": (N,) uint8 tensor, "sha256"}``."""
    proto = tokenizer.model_proto
    return {"kind": tokenizer.kind, "model": torch.frombuffer(bytearray(proto), dtype=torch.uint8),
            "sha256": hashlib.sha256(proto).hexdigest()}


def tokenizer_from_bundle(bundle: dict) -> Tokenizer:
    """The tokenizer a model file describes: characters from ``vocab``, or the sentencepiece model in
    ``tokenizer``, which must be intact (its SHA-256) and spell exactly ``vocab``.

    Raises:
        ValueError: saying which part is wrong (the caller names the file).
    """
    vocab = bundle.get("vocab") or []
    entry = bundle.get("tokenizer")
    if entry is None:
        return CharTokenizer(vocab)
    model = entry.get("model") if isinstance(entry, dict) else None
    if not isinstance(model, torch.Tensor) or model.dtype != torch.uint8 or model.dim() != 1:
        raise ValueError("'tokenizer' must hold the sentencepiece model as a 1-D uint8 tensor")
    return verified_piece_tokenizer(model.numpy().tobytes(), entry.get("kind"), entry.get("sha256"), vocab,
                                    vocab_name="the model file's vocabulary")


def _check_weights(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights a model cannot recognise with: non-finite values, or feature scales that are not positive.

    Either would give empty transcripts with exit status 0 instead of an error.
    """
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ModelFileError(f"{where}: tensor {name} holds {int((~torch.isfinite(t)).sum())} NaN or infinite "
                                 f"value(s) of {t.numel()}; the model is broken (a diverged run?): use an earlier "
                                 "checkpoint or retrain")
        if name.endswith("features.std") and not bool((t > 0).all()):
            raise ModelFileError(f"{where}: feature statistics {name} has {int((t <= 0).sum())} dimension(s) with a "
                                 f"standard deviation <= 0 (of {t.numel()}); recompute the statistics (asr stats) "
                                 "and retrain")


# ---- checkpoint averaging -----------------------------------------------------------------------


def average_state_dicts(states: list[dict[str, torch.Tensor]], where: list[str] | None = None) -> dict:
    """Element-wise mean of floating-point tensors over ``states``; other tensors come from the last one.

    Raises:
        ModelFileError: the states do not hold the same tensors (names the first file that differs).
    """
    if not states:
        raise ValueError("nothing to average")
    where = where or [f"checkpoint {i}" for i in range(len(states))]
    keys = set(states[0])
    for s, w in zip(states[1:], where[1:]):
        if set(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise ModelFileError(f"{w}: its weights do not match those of {where[0]} (different model?)")
    out = {}
    for k, last in states[-1].items():
        if last.is_floating_point():
            out[k] = torch.stack([s[k].double() for s in states]).mean(0).to(last.dtype)
        else:
            out[k] = last.clone()
    return out


def last_epoch_checkpoints(run_dir: str | os.PathLike, n: int) -> list[Path]:
    """The last ``n`` ``checkpoints/epoch-N.pt`` files of a training run, oldest first."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    numbered = sorted(ckpt_dir.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    if len(numbered) < n:
        raise ModelFileError(f"{ckpt_dir}: {len(numbered)} epoch checkpoint(s), {n} needed for averaging "
                             "(raise trainer.keep_checkpoints)")
    return numbered[-n:]


def average_checkpoints(checkpoints: list[Path], model_file: str | os.PathLike, out: str | os.PathLike) -> Path:
    """A model file whose weights are the mean of ``checkpoints``' (training checkpoints).

    Everything else (vocabulary, settings, normalisation) comes from ``model_file``, the
    run's ``model.pt``. Averaging the last epochs of a run smooths the noise of the final
    updates, and usually gives a lower WER than any single epoch.
    """
    bundle = safe_load(model_file)
    states = []
    for p in checkpoints:
        ckpt = safe_load(p)
        if not isinstance(ckpt.get("model"), dict):
            raise ModelFileError(f"{p}: not a training checkpoint (no 'model' weights)")
        states.append(ckpt["model"])
    bundle = {**bundle, "state_dict": average_state_dicts(states, [str(p) for p in checkpoints]),
              "metrics": {"averaged_from": [Path(p).name for p in checkpoints]}}
    model_from_bundle(bundle, str(out))  # the averaged weights must still load into the model described
    save_model(out, bundle)
    return Path(out)
