"""``asr transcribe``: a folder, audio file or manifest to transcripts (see TranscribeConfig)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from asr.cli.common import store_app, torchrun_aware, validated
from asr.config.commands import TranscribeConfig
from asr.config.schema import ConfigError, check_decoder


@store_app("transcribe")
def _transcribe_app(cfg: DictConfig) -> None:
    from asr.inference.backends import load_recognizer
    from asr.inference.transcribe import check_formats, transcribe

    c = validated(cfg, TranscribeConfig)
    check_decoder(c.decoder)
    try:
        formats = check_formats(c.format)
    except ValueError as err:
        raise ConfigError(f"format: {err}") from None
    rank, world_size, device, threads = _join(c)
    model, tokenizer = load_recognizer(c.model, c.runtime, threads)
    model.to(device)
    summary = transcribe(
        model, tokenizer, c.input, c.output, formats=formats, include=c.include, extensions=c.extension_list,
        resume=c.resume, overwrite=c.overwrite, min_duration_s=c.min_duration_s,
        max_batch_duration_s=c.batch.max_duration_s, num_workers=c.batch.num_workers, windows=c.long_audio,
        subtitles=c.subtitles, device=device, progress=c.progress if rank == 0 else False,
        rank=rank, world_size=world_size,
        run_info={"model": str(Path(c.model).resolve()), "input": str(Path(c.input).resolve()),
                  "device": str(device), "threads": threads, "runtime": c.runtime})
    if world_size > 1:
        from asr.training import distributed

        distributed.shutdown()
    if rank == 0:
        _report(summary)
        if summary["files"] and not summary["transcribed"]:
            sys.exit(1)  # nothing could be transcribed: a script must not take that for success
        if summary["failed"]:
            sys.exit(3)  # the rest is transcribed; the inputs that failed are in the output and the summary


def _join(c: TranscribeConfig) -> tuple[int, int, object, int]:
    """``(rank, world size, device, threads)`` of this process, in torchrun's process group if there is one.

    An ONNX export on the CPU in one process needs nothing of torch, whose import alone takes
    seconds (``benchmarks/cold_start.py``), so that case sets up no torch device or threads:
    onnxruntime gets the threads.
    """
    from asr.inference.backends import device_for
    from asr.runtime import free_cores

    device = device_for(c.runtime, c.device)
    if c.runtime == "onnx" and device == "cpu" and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device, c.threads if c.threads > 0 else free_cores()
    from asr.runtime import resolve_device, setup_threads
    from asr.training import distributed

    world, dev = distributed.init_from_env(resolve_device(device))
    return world.rank, world.size, dev, setup_threads(distributed.threads_per_rank(c.threads, world))


transcribe_main = torchrun_aware(_transcribe_app)


def _report(summary: dict) -> None:
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
