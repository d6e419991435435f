"""Command-line entry points (Hydra apps). The only module that imports Hydra.

Each command composes its config from ``asr/conf`` (shipped with the package, so the
commands work from any directory), validates it into typed settings, and calls a plain
function. A config or data problem ends with one ``error:`` line naming the key or
file, and exit status 2, not a traceback.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from asr.config.schema import ConfigError, DecoderConfig, Settings, check_decoder, from_dict
from asr.data.audio import AudioError
from asr.data.manifest import ManifestError
from asr.fileio import atomic_write_text
from asr.models.checkpoint import ModelFileError

log = logging.getLogger("asr")
CONFIG_PATH = "pkg://asr.conf"
USER_ERRORS = (ConfigError, ManifestError, ModelFileError, AudioError, FileNotFoundError, RuntimeError)


def _user_errors(fn):
    """Turn the errors a user can fix into one clear line and exit status 2."""
    @functools.wraps(fn)
    def wrapper(cfg: DictConfig):
        try:
            return fn(cfg)
        except USER_ERRORS as err:
            log.error("%s", err)
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
    return wrapper


def _resolved(cfg: DictConfig, allowed: set[str]) -> dict:
    """The config as a plain dict (interpolations resolved), refusing unknown top-level keys."""
    d = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return d


def _missing(cfg: DictConfig, *keys: str) -> None:
    missing = [k for k in keys if OmegaConf.is_missing(cfg, k) if "." not in k] + \
              [k for k in keys if "." in k and OmegaConf.is_missing(OmegaConf.select(cfg, k.rsplit(".", 1)[0]),
                                                                    k.rsplit(".", 1)[1])]
    if missing:
        raise ConfigError(f"missing required setting(s): {', '.join(f'{k}=...' for k in missing)}")


def _run_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


# Under torchrun every rank starts its own Hydra app. Left alone, each would resolve ${now:...} in
# its own second and write its own directory, .hydra/ and log file. Ranks > 0 therefore run Hydra
# in the current directory with no output of their own (warnings only, to the console) and take
# rank 0's run directory once the process group is up (see _shared_run_dir).
QUIET_RANK_OVERRIDES = ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=stdout",
                        "hydra.job_logging.root.level=WARNING"]


def _torchrun_aware(main):
    """Entry point wrapper: append :data:`QUIET_RANK_OVERRIDES` to the command line of ranks > 0."""
    @functools.wraps(main)
    def wrapper():
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and int(os.environ.get("RANK", "0")) > 0:
            if "-m" in sys.argv or "--multirun" in sys.argv:
                print("error: a multirun (-m) under torchrun is not supported; launch one torchrun per job "
                      "(see README, Scaling out)", file=sys.stderr)
                sys.exit(2)
            sys.argv += QUIET_RANK_OVERRIDES
        return main()
    return wrapper


def _shared_run_dir(device: str):
    """Join the process group (if any) and return ``(world, device, run directory)``: rank 0's directory on all."""
    from asr.runtime import resolve_device
    from asr.training import distributed

    world, dev = distributed.init_from_env(resolve_device(device))
    return world, dev, Path(distributed.broadcast(str(_run_dir())))


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
@_user_errors
def _train_app(cfg: DictConfig) -> float:
    from asr.training import distributed
    from asr.training.train import train

    d = _resolved(cfg, set(Settings.__dataclass_fields__))
    s = Settings.from_dict(d)
    world, _, run_dir = _shared_run_dir(s.trainer.device)
    if world.is_main:
        atomic_write_text(run_dir / "config.resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(d)))
    summary = train(s, run_dir, resolved_config=d)
    distributed.shutdown()
    return summary["best_dev_wer"]  # the value a sweeper optimises


train_main = _torchrun_aware(_train_app)


def _inference_app(config_name: str):
    """Decorator for commands whose ``model=`` is a model *file*, not the training ``model/`` group.

    Hydra treats ``model=...`` as a group choice whenever a ``model/`` group is on the config
    search path. These commands therefore read their YAML (``conf/<name>.yaml`` and the
    ``decoder/`` group) into Hydra's ConfigStore and start with no config directory, so
    ``model=<file>`` is a plain value, as users expect.
    """
    def register() -> None:
        root = importlib.resources.files("asr.conf")
        cs = ConfigStore.instance()
        cs.store(name=config_name, node=OmegaConf.create((root / f"{config_name}.yaml").read_text()))
        for option in (root / "decoder").iterdir():
            if option.name.endswith(".yaml"):
                cs.store(group="decoder", name=option.name[:-5], node=OmegaConf.create(option.read_text()))

    def wrap(fn):
        app = hydra.main(version_base="1.3", config_path=None, config_name=config_name)(_user_errors(fn))

        @functools.wraps(fn)
        def main():
            register()
            return app()
        return main
    return wrap


@_inference_app("evaluate")
def evaluate_main(cfg: DictConfig) -> float:
    import torch

    from asr.data.manifest import read_manifest
    from asr.inference.evaluate import evaluate
    from asr.models.checkpoint import load_model
    from asr.runtime import resolve_device, setup_threads

    _missing(cfg, "model", "data.manifest")
    d = _resolved(cfg, {"model", "data", "decoder", "device", "threads"})
    decoder_cfg = check_decoder(from_dict(DecoderConfig, d["decoder"], "decoder"))
    data = d["data"]
    unknown = sorted(set(data) - {"manifest", "max_batch_duration_s", "num_workers"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join('data.' + k for k in unknown)}; "
                          "allowed: manifest, max_batch_duration_s, num_workers")
    threads = setup_threads(int(d["threads"]))
    device = resolve_device(str(d["device"]))
    model, tokenizer, bundle = load_model(d["model"], map_location="cpu")
    model.to(device)
    decoder = _decoder(decoder_cfg, tokenizer.vocab)
    utts = read_manifest(data["manifest"])
    run_dir = _run_dir()
    with torch.inference_mode():
        summary = evaluate(model, tokenizer, utts, out_dir=run_dir, device=device,
                           max_batch_duration_s=float(data["max_batch_duration_s"]),
                           num_workers=int(data["num_workers"]), decoder=decoder)
    summary.update(model=str(Path(d["model"]).resolve()), manifest=str(Path(data["manifest"]).resolve()),
                   decoder=d["decoder"]["name"], decoder_settings=d["decoder"], threads=threads, device=str(device))
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    w = summary["words"]
    print(f"WER {100 * summary['wer']:.2f} %  CER {100 * summary['cer']:.2f} %  "
          f"({w['substitutions']} sub, {w['deletions']} del, {w['insertions']} ins / {w['ref_len']} words, "
          f"{summary['utterances']} utterances)  RTF {summary['real_time_factor']:.4f} "
          f"(search {summary['search_real_time_factor']:.4f})  report: {run_dir}/report.txt")
    if summary["failed"]:
        print(f"warning: {len(summary['failed'])} utterance(s) could not be read, scored as deletions "
              f"(see {run_dir}/report.txt)", file=sys.stderr)
    return summary["wer"]


def _decoder(cfg: DecoderConfig, vocab):
    """The configured decoder; a missing or malformed lexicon or LM file becomes a ConfigError naming it."""
    from asr.decoding.ctc import build_decoder

    try:
        return build_decoder(cfg.name, vocab, **cfg.options())
    except (ValueError, RuntimeError) as err:  # RuntimeError: a decoder this machine cannot run
        raise ConfigError(f"decoder={cfg.name}: {err}") from None


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="stats")
@_user_errors
def stats_main(cfg: DictConfig) -> None:
    from asr.config.schema import DataConfig
    from asr.data.manifest import read_manifests
    from asr.frontend.features import FeatureConfig
    from asr.frontend.stats import build_vocab, compute_stats, save_stats, save_vocab

    _missing(cfg, "output_dir")
    d = _resolved(cfg, {"data", "features", "output_dir"})
    data = from_dict(DataConfig, d["data"], "data")
    feats = from_dict(FeatureConfig, d["features"], "features")
    if not data.train_manifest:
        raise ConfigError("data.train_manifest is not set")
    out = Path(d["output_dir"])
    utts = read_manifests(data.train_manifest)  # every shard: vocabulary and statistics cover the whole corpus
    tokenizer = build_vocab(utts)
    save_vocab(out / "vocab.json", tokenizer)
    stats = compute_stats(utts, feats)
    save_stats(out / "stats.pt", stats)
    print(f"vocabulary: {len(tokenizer)} symbols -> {out / 'vocab.json'}; "
          f"statistics over {stats['frames']} frames -> {out / 'stats.pt'}")


@_inference_app("transcribe")
def _transcribe_app(cfg: DictConfig) -> None:
    from asr.config.schema import DecoderConfig
    from asr.inference.outputs import SubtitleConfig
    from asr.inference.segment import WindowConfig
    from asr.inference.transcribe import check_formats, transcribe
    from asr.models.checkpoint import load_model
    from asr.runtime import resolve_device, setup_threads
    from asr.training import distributed

    _missing(cfg, "model", "input", "output")
    groups = {"batch": {"max_duration_s", "num_workers"}, "long_audio": set(WindowConfig.__dataclass_fields__),
              "subtitles": set(SubtitleConfig.__dataclass_fields__)}
    d = _resolved(cfg, {"model", "input", "output", "format", "include", "extensions", "resume", "overwrite",
                        "min_duration_s", "decoder", "device", "threads", "progress", *groups})
    if check_decoder(from_dict(DecoderConfig, d["decoder"], "decoder")).name != "greedy":
        raise ConfigError(f"asr-transcribe decodes greedily (its word timestamps come from the greedy CTC path); "
                          f"decoder={d['decoder']['name']} is available in asr-evaluate")
    for group, allowed in groups.items():
        unknown = sorted(set(d[group]) - allowed)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(f'{group}.{k}' for k in unknown)}; "
                              f"allowed: {', '.join(sorted(allowed))}")
    try:
        formats = check_formats(d["format"])
        windows = from_dict(WindowConfig, d["long_audio"], "long_audio")
        subtitles = from_dict(SubtitleConfig, d["subtitles"], "subtitles")
    except ValueError as err:
        raise ConfigError(str(err)) from None
    extensions = d["extensions"].split(",") if isinstance(d["extensions"], str) else d["extensions"]
    if d["progress"] not in (None, True, False) or not isinstance(d["include"], str):
        raise ConfigError("progress must be null, true or false, and include a string pattern")
    workers = d["batch"]["num_workers"]
    world, device = distributed.init_from_env(resolve_device(str(d["device"])))
    threads = setup_threads(distributed.threads_per_rank(int(d["threads"]), world))
    model, tokenizer, _ = load_model(d["model"], map_location="cpu")
    model.to(device)
    summary = transcribe(
        model, tokenizer, d["input"], d["output"], formats=formats, include=d["include"],
        extensions=[str(e) for e in extensions], resume=bool(d["resume"]), overwrite=bool(d["overwrite"]),
        min_duration_s=float(d["min_duration_s"]), max_batch_duration_s=float(d["batch"]["max_duration_s"]),
        num_workers=None if workers is None else int(workers), windows=windows, subtitles=subtitles, device=device,
        progress=d["progress"] if world.is_main else False, rank=world.rank, world_size=world.size,
        run_info={"model": str(Path(d["model"]).resolve()), "input": str(Path(d["input"]).resolve()),
                  "device": str(device), "threads": threads})
    distributed.shutdown()
    if not world.is_main:
        return
    run = summary["this_run"]
    rtf = f"RTF {run['real_time_factor']:.4f}" if run["real_time_factor"] is not None else "no new audio"
    print(f"transcribed {summary['transcribed']} of {summary['files']} files ({summary['audio_hours']:.3f} h audio; "
          f"this run {run['files']} files in {run['wall_seconds']:.1f} s, {rtf}, {run['resumed_files']} already "
          f"done) -> {summary['outputs']['jsonl']}")
    if "scores" in summary:
        s = summary["scores"]
        print(f"WER {100 * s['wer']:.2f} %  CER {100 * s['cer']:.2f} %  ({s['utterances']} utterances with text)")
    if summary["failed"]:
        print(f"warning: {summary['failed']} file(s) could not be transcribed (reasons in "
              f"{summary['outputs']['summary']}):", file=sys.stderr)
        for f in summary["failed_files"][:10]:
            print(f"  {f['path']}: {f['reason']}", file=sys.stderr)
    if summary["skipped"]:
        print("skipped: " + ", ".join(f"{n} {reason}" for reason, n in summary["skipped"].items()), file=sys.stderr)


transcribe_main = _torchrun_aware(_transcribe_app)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="validate")
@_user_errors
def validate_main(cfg: DictConfig) -> None:
    from asr.data.validate import AUDIO_CHECKS, validate_manifest
    from asr.frontend.features import FeatureConfig
    from asr.frontend.stats import load_vocab

    _missing(cfg, "data.manifest")
    d = _resolved(cfg, {"data", "features", "require_text", "audio", "duration_tolerance_s", "report"})
    unknown = sorted(set(d["data"]) - {"manifest", "vocab"})
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join('data.' + k for k in unknown)}; allowed: manifest, vocab")
    if d["audio"] not in AUDIO_CHECKS:
        raise ConfigError(f"audio: {d['audio']!r} is not one of {', '.join(AUDIO_CHECKS)}")
    tolerance = d["duration_tolerance_s"]
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ConfigError(f"duration_tolerance_s: expected a number >= 0, got {tolerance!r}")
    if not isinstance(d["require_text"], bool):
        raise ConfigError(f"require_text: expected true or false, got {d['require_text']!r}")
    feats = from_dict(FeatureConfig, d["features"], "features")
    tokenizer = load_vocab(d["data"]["vocab"]) if d["data"]["vocab"] else None
    manifests = d["data"]["manifest"] if isinstance(d["data"]["manifest"], list) else [d["data"]["manifest"]]
    reports = [validate_manifest(str(m), features=feats, tokenizer=tokenizer, audio=d["audio"],
                                 duration_tolerance_s=float(tolerance), require_text=d["require_text"])
               for m in manifests]
    out = Path(d["report"]) if d["report"] else _run_dir() / "validation.json"
    ok = all(r["ok"] for r in reports)
    atomic_write_text(out, json.dumps({"ok": ok, "manifests": reports}, indent=2, ensure_ascii=False) + "\n")
    for r in reports:
        kinds = ", ".join(f"{k} {n}" for k, n in r["kinds"].items()) or "no problems"
        print(f"{r['manifest']}: {r['lines']} lines, {r['utterances']} usable; {r['fatal']} fatal, "
              f"{r['warnings']} warning(s) ({kinds})")
        for p in [p for p in r["problems"] if p["fatal"]][:20]:
            print(f"  {r['manifest']}:{p['line']}: {p['kind']}: {p['message']}", file=sys.stderr)
    print(f"report: {out}")
    if not ok:
        sys.exit(1)


# ---- looking inside a model, a training run ------------------------------------------------


@_inference_app("inspect")
def inspect_main(cfg: DictConfig) -> None:
    import torch

    from asr.analysis.inspection import inspect_utterance, write_inspection
    from asr.data.audio import load_audio
    from asr.models.checkpoint import load_model
    from asr.runtime import setup_threads

    _missing(cfg, "model", "audio", "output")
    d = _resolved(cfg, {"model", "audio", "output", "layer", "direction", "top_k", "dpi", "threads"})
    for key in ("layer", "top_k", "dpi", "threads"):
        if not isinstance(d[key], int) or isinstance(d[key], bool):
            raise ConfigError(f"{key}: expected an integer, got {d[key]!r}")
    setup_threads(d["threads"])
    model, tokenizer, _ = load_model(d["model"])
    wave = torch.from_numpy(load_audio(d["audio"], model.features.config.sample_rate_hz))
    insp = inspect_utterance(model, tokenizer, wave, layer=d["layer"], direction=str(d["direction"]))
    summary = write_inspection(insp, d["output"], top_k=d["top_k"], name=Path(d["audio"]).name, dpi=d["dpi"])
    print(f'recognised "{summary["text"]}"; layer {summary["layer"]} {summary["direction"]}: units '
          f'{", ".join(str(u["unit"]) for u in summary["units"])} (recomputed gates match the model to '
          f'{summary["recompute_max_abs_error"]:.1e}) -> {Path(d["output"])}/ '
          f'{" ".join(summary["figures"].values())} inspect.json')


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="plot")
@_user_errors
def plot_main(cfg: DictConfig) -> None:
    from asr.analysis.plots import write_training_curves

    _missing(cfg, "run")
    d = _resolved(cfg, {"run", "output", "dpi"})
    out = Path(d["output"]) if d["output"] is not None else Path(d["run"]) / "plots"
    try:
        written = write_training_curves(d["run"], out, dpi=int(d["dpi"]))
    except ValueError as err:  # a malformed train_log.jsonl: the message names file and line
        raise ConfigError(f"run={d['run']}: {err}") from None
    print("wrote " + ", ".join(str(p) for p in written))
