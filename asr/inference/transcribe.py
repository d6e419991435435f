"""Batch transcription: a folder, a file or a manifest in; text with word timestamps out.

The stages are plain functions over lists, so a distributed run can split the work
between them (``list_inputs`` → ``shard`` → :func:`transcribe_utterances` → write):

1. :func:`asr.data.discover.list_inputs` finds the audio; :func:`asr.data.discover.probe_durations`
   reads durations from the headers (no decoding).
2. Every file is cut into windows (:mod:`asr.inference.segment`; one window unless it is long),
   windows are sorted by duration and grouped into batches of bounded padded audio, and
   DataLoader workers decode them while the model runs on the previous batch (with one batch,
   or no core to spare, this process decodes them itself).
3. Each window's greedy CTC path gives timed words (:mod:`asr.decoding.alignment`); a file's line
   is appended to the JSONL record (:mod:`asr.inference.outputs`) as soon as all its windows are done.

Batches are numpy arrays between the stages; torch is imported only to run a torch model or
decoding workers, so an ONNX export (:class:`asr.inference.onnx_runtime.OnnxRecognizer`) in one
process transcribes without loading torch (``asr transcribe runtime=onnx`` starts without it).

Example:
    >>> model, tokenizer, _ = load_model("exp/an4/train/model.pt")  # doctest: +SKIP
    >>> summary = transcribe(model, tokenizer, "recordings/", "out/rec.jsonl", formats=["srt"])  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.data.audio import AudioError, load_audio
from asr.data.batching import make_batches
from asr.data.discover import AUDIO_EXTENSIONS, Inputs, duration_warning, list_inputs, probe_durations, shard
from asr.data.manifest import Utterance
from asr.data.tokenizer import CharTokenizer
from asr.decoding.alignment import Word, best_path, words_from_path
from asr.fileio import atomic_write_text, drop_inherited_locks
from asr.inference.backends import model_fingerprint
from asr.inference.metrics import Hypothesis, score
from asr.inference.onnx_runtime import OnnxRecognizer
from asr.inference.outputs import (
    FORMATS,
    OutputError,
    SubtitleConfig,
    TranscriptLog,
    derived_paths,
    iter_records,
    make_record,
    sort_records,
    write_derived,
)
from asr.inference.segment import Window, WindowConfig, keep_central, plan_windows
from asr.runtime import available_cores, peak_rss_mb

if TYPE_CHECKING:
    import torch

    from asr.models.acoustic import Recognizer

log = logging.getLogger(__name__)


def job_path(output: str | Path) -> Path:
    """Where the provenance of the record file ``output`` goes: ``<output>.job.json`` (see :func:`provenance`)."""
    return Path(f"{output}.job.json")


def provenance(model: torch.nn.Module, input_path: str | Path, inputs: Inputs) -> dict:
    """What a record file was made from: the input set and the model, each with a SHA-256 fingerprint.

    The input fingerprint covers every input's id and resolved path in order; the model's
    covers every tensor of its state dict (names, dtypes, shapes and values).
    """
    files = hashlib.sha256()
    for u in inputs.utts:
        files.update(f"{u.utt_id}\t{Path(u.audio_path).resolve()}\n".encode())
    return {"inputs": {"source": str(Path(input_path).resolve()), "files": len(inputs.utts),
                       "fingerprint": files.hexdigest()},
            "model": {"fingerprint": model_fingerprint(model)}}


def _check_provenance(output: str | Path, record_log: TranscriptLog, inputs: Inputs, job: dict) -> None:
    """Refuse to extend a record that holds other inputs' files or another model's transcripts; then record ``job``.

    A record may gain inputs (new files in a folder resume into it), but never mix models or input sets.
    """
    if record_log.done:
        foreign = sorted(record_log.done - {u.utt_id for u in inputs.utts})
        if foreign:
            raise OutputError(f"refusing to add to {output}: {len(foreign)} of its records are not inputs of this "
                              f"run (e.g. {foreign[0]!r}), so it belongs to another job; choose another output, or "
                              "set overwrite=true to start it afresh")
        try:
            before = json.loads(job_path(output).read_text(encoding="utf-8"))["model"]["fingerprint"]
        except (OSError, ValueError, TypeError, KeyError):
            before = None  # a record from before provenance was written: nothing to compare
        if before is not None and before != job["model"]["fingerprint"]:
            raise OutputError(f"refusing to add to {output}: its records were made by another model "
                              f"(fingerprint {before[:12]}, this one {job['model']['fingerprint'][:12]}); choose "
                              "another output, or set overwrite=true to start it afresh")
    atomic_write_text(job_path(output), json.dumps(job, indent=2, ensure_ascii=False) + "\n")


def summary_path(output: str | Path) -> Path:
    """Where the run summary of the record file ``output`` goes: ``<output>.summary.json``."""
    return Path(f"{output}.summary.json")


# ---- recognition --------------------------------------------------------------------------------

class WindowDataset:
    """``(utterance, window)`` pairs → decoded samples (a map-style dataset for torch's DataLoader too).

    A read failure is an item, not an exception."""

    def __init__(self, items: Sequence[tuple[Utterance, Window]], sample_rate_hz: int):
        self.items = list(items)
        self.sample_rate_hz = sample_rate_hz

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        utt, win = self.items[i]
        try:
            samples = load_audio(utt.audio_path, self.sample_rate_hz, offset_s=win.offset_s, duration_s=win.duration_s)
        except AudioError as err:
            where = f" (in the window starting at {win.offset_s:.1f} s)" if win.count > 1 else ""
            return {"item": i, "error": err.reason + where}
        return {"item": i, "samples": samples}


@dataclass
class WindowBatch:
    """``waves: (B, S)`` float32 zero-padded, ``wave_lens: (B,)`` int64 (numpy); ``items`` index the dataset."""

    waves: np.ndarray
    wave_lens: np.ndarray
    items: list[int]
    errors: list[tuple[int, str]]


def collate_windows(batch: list[dict]) -> WindowBatch:
    """Pad the readable windows of a batch into one array; unreadable ones become ``errors``."""
    ok = [b for b in batch if "error" not in b]
    wave_lens = np.array([len(b["samples"]) for b in ok], dtype=np.int64)
    waves = np.zeros((len(ok), int(wave_lens.max()) if ok else 0), dtype=np.float32)
    for k, b in enumerate(ok):
        waves[k, : wave_lens[k]] = b["samples"]
    return WindowBatch(waves, wave_lens, [b["item"] for b in ok], [(b["item"], b["error"]) for b in batch
                                                                  if "error" in b])


def transcribe_utterances(model: Recognizer | OnnxRecognizer, tokenizer: CharTokenizer, utts: Sequence[Utterance], *,
                          windows: WindowConfig = WindowConfig(), max_batch_duration_s: float = 120.0,
                          num_workers: int | None = None, device: torch.device | str = "cpu"
                          ) -> Iterator[list[dict]]:
    """Recognise ``utts`` (durations known); yield the records finished by each batch.

    Records come in the order their files finish (shortest first), not input order.
    Memory is bounded by the batch size and the window length, whatever the file lengths.

    Args:
        model: in eval mode, on ``device``: a torch model, or an ONNX export (run without torch).
        utts: inputs with ``duration_s`` > 0 (see :func:`asr.data.discover.probe_durations`).
        windows: window length and overlap for files longer than one window.
        max_batch_duration_s: padded audio seconds per batch (longest window × count).
        num_workers: audio-decoding processes (0: decode in this process; None: :func:`default_workers`).
    """
    cfg = model.features.config
    plan = [(i, w) for i, u in enumerate(utts)
            for w in plan_windows(u.duration_s, windows, offset_s=u.offset_s, to_end=u.offset_s == 0,
                                  frame_shift_s=cfg.output_frame_shift_s)]
    if not plan:
        return
    batches = make_batches([w.nominal_s for _, w in plan], max_batch_duration_s, shuffle=False)
    if num_workers is None:
        num_workers = default_workers(compute_threads(model), len(batches))
    loader = window_batches(WindowDataset([(utts[i], w) for i, w in plan], cfg.sample_rate_hz), batches, num_workers)
    shift_s = getattr(model, "time_offset_s", 0.0)  # frame 0 before the audio when the model pads its ends
    windows_left = Counter(i for i, _ in plan)
    words: dict[int, list[Word]] = {}
    errors: dict[int, str] = {}
    for batch in loader:
        touched = []
        for item, reason in batch.errors:
            errors.setdefault(plan[item][0], reason)
            touched.append(item)
        if batch.items:
            log_probs, lengths = forward(model, batch.waves, batch.wave_lens, device)
            ids, posteriors = best_path(log_probs)  # (B, T) each
            for k, item in enumerate(batch.items):
                utt_index, win = plan[item]
                n = int(lengths[k])
                found = words_from_path(ids[k, :n].tolist(), posteriors[k, :n].tolist(), tokenizer.vocab,
                                        frame_shift_s=cfg.output_frame_shift_s, offset_s=win.offset_s + shift_s)
                words.setdefault(utt_index, []).extend(keep_central(found, win))
                touched.append(item)
        finished = []
        for item in touched:
            utt_index = plan[item][0]
            windows_left[utt_index] -= 1
            if windows_left[utt_index] == 0:
                finished.append(_record(utts[utt_index], words.pop(utt_index, []), errors.pop(utt_index, None)))
        yield finished


def window_batches(dataset: WindowDataset, batches: list[list[int]], num_workers: int) -> Iterator[WindowBatch]:
    """``dataset``'s windows decoded and collated batch by batch: here (``num_workers=0``, no torch needed),
    or by ``num_workers`` torch DataLoader processes while the model runs on the previous batch."""
    if num_workers == 0:
        for batch in batches:
            yield collate_windows([dataset[i] for i in batch])
        return
    import torch

    yield from torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate_windows,
                                           num_workers=num_workers, worker_init_fn=drop_inherited_locks)


def forward(model: Recognizer | OnnxRecognizer, waves: np.ndarray, wave_lens: np.ndarray,
            device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``model`` on one batch: ``waves: (B, S)``, ``wave_lens: (B,)`` → ``log_probs: (B, T, V)`` float32,
    ``lengths: (B,)`` (numpy in and out; an ONNX export never touches torch)."""
    if isinstance(model, OnnxRecognizer):
        return model.run(waves, wave_lens)
    import torch

    with torch.inference_mode():
        log_probs, lengths = model(torch.from_numpy(waves).to(device), torch.from_numpy(wave_lens).to(device))
        return log_probs.float().cpu().numpy(), lengths.cpu().numpy()


def compute_threads(model: Recognizer | OnnxRecognizer) -> int:
    """The CPU threads ``model`` computes with: an ONNX export's own (0: onnxruntime's, every core), else torch's."""
    if isinstance(model, OnnxRecognizer):
        return model.threads or available_cores()
    import torch

    return torch.get_num_threads()


def default_workers(threads: int | None = None, batches: int = 2) -> int:
    """One decoding process when a core is free beside the model's ``threads`` (None: torch's) and there is
    more than one batch, else none.

    A worker without a core of its own preempts the model's OpenMP threads, which then
    wait for each other at every LSTM step; when the model's threads already fill the cores,
    decoding in the main process is faster (``benchmarks/transcribe_rtf.py`` times both). With one
    batch a worker has nothing to decode while the model runs: it would only cost its start.
    """
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return 1 if batches > 1 and available_cores() > threads else 0


def _record(utt: Utterance, words: list[Word], error: str | None) -> dict:
    if error is not None:
        return make_record(utt.utt_id, utt.audio_path, utt.duration_s, None, error=error)
    words.sort(key=lambda w: w.mid_s)  # windows finish shortest first, not in time order
    lo, hi = utt.offset_s, utt.offset_s + utt.duration_s  # a word heard in a model's edge padding, or a
    words = [replace(w, start_s=min(max(w.start_s, lo), hi), end_s=min(max(w.end_s, lo), hi))  # frame past the
             for w in words]  # end, is given the times of the audio that exists
    return make_record(utt.utt_id, utt.audio_path, utt.duration_s, " ".join(w.text for w in words),
                       [w.to_dict() for w in words])


# ---- the whole job --------------------------------------------------------------------------------

def transcribe(model: Recognizer, tokenizer: CharTokenizer, input_path: str | Path, output: str | Path, *,
               formats: Sequence[str] = ("jsonl",), include: str = "*",
               extensions: Sequence[str] = AUDIO_EXTENSIONS, resume: bool = True, overwrite: bool = False,
               min_duration_s: float = 0.1, max_batch_duration_s: float = 120.0, num_workers: int | None = None,
               windows: WindowConfig = WindowConfig(), subtitles: SubtitleConfig = SubtitleConfig(),
               device: torch.device | str = "cpu", progress: bool | None = None,
               rank: int = 0, world_size: int = 1, run_info: dict | None = None) -> dict:
    """Transcribe a folder, an audio file or a manifest into ``output`` (JSONL) and derived formats.

    Already transcribed inputs (ids in ``output``) are skipped when ``resume``; files that
    cannot be read get a line with the reason and the run goes on.

    Args:
        input_path: a folder (searched recursively), one audio file, or a ``.jsonl`` manifest.
        output: the JSONL record; derived formats go next to it (see :func:`asr.inference.outputs.derived_paths`)
            and the summary to ``<output>.summary.json``.
        formats: any of ``jsonl``, ``txt``, ``csv``, ``srt``, ``vtt`` (the JSONL is always written).
        include, extensions: which files of a folder count (see :func:`asr.data.discover.list_inputs`).
        overwrite: replace an ``output`` that is not a transcription record (otherwise refused).
        min_duration_s: shorter files are reported as too short instead of transcribed.
        progress: a progress bar (True), log lines (False), or a bar only on a terminal (None).
        rank, world_size: under ``torchrun`` (a running process group): this process's place. Each
            rank transcribes every ``world_size``-th input not yet done into its own part file
            (:func:`part_path`), and rank 0 merges the parts into ``output``. A killed run's parts
            are merged in when it is resumed, whatever the number of processes then.
        run_info: extra facts for the summary (model path, device, threads).

    Returns:
        The summary (also written as JSON): counts, audio duration, wall time, real-time
        factor, failed and skipped files, and WER/CER when the manifest has references.
        Every rank returns rank 0's summary.
    """
    t0 = time.perf_counter()
    formats = check_formats(formats)
    inputs = list_inputs(input_path, extensions=extensions, include=include)
    _refuse_writing_inputs(output, formats, input_path, inputs)
    if not inputs.utts and rank == 0:
        log.warning("no audio found in %s (%d paths skipped: %s)", input_path, len(inputs.skipped),
                    dict(Counter(s.reason for s in inputs.skipped)))
    work = dict(model=model, tokenizer=tokenizer, sample_rate_hz=model.features.config.sample_rate_hz,
                min_duration_s=min_duration_s, windows=windows, max_batch_duration_s=max_batch_duration_s,
                num_workers=num_workers, device=device, progress=progress,
                job=provenance(model, input_path, inputs))
    if world_size == 1:
        resumed, this_run = _transcribe_alone(output, inputs, formats, resume=resume, overwrite=overwrite, work=work)
    else:
        resumed, this_run = _transcribe_shard(output, inputs, formats, rank, world_size, resume=resume,
                                              overwrite=overwrite, work=work)
        if rank != 0:  # rank 0 writes the outputs and the summary alone, then sends the summary
            return _distributed().broadcast(None)
    summary = _write_outputs(output, inputs, formats, subtitles, t0=t0, this_run=this_run, resumed=resumed)
    summary.update(run_info or {}, **({"processes": world_size} if world_size > 1 else {}),
                   provenance=json.loads(job_path(output).read_text(encoding="utf-8")))
    atomic_write_text(summary_path(output), json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return _distributed().broadcast(summary) if world_size > 1 else summary


def _distributed():
    """:mod:`asr.training.distributed`, imported by the runs that use it: it loads torch.distributed."""
    from asr.training import distributed

    return distributed


def _transcribe_alone(output: str | Path, inputs: Inputs, formats: Sequence[str], *, resume: bool, overwrite: bool,
                      work: dict) -> tuple[int, list]:
    """One process: every input not yet in ``output`` into it; returns (files resumed, [files, audio s] this run)."""
    _refuse_foreign_targets(output, formats, overwrite)
    with TranscriptLog(output, resume=resume, overwrite=overwrite) as record_log:
        _merge_parts(output, record_log, keep=resume)  # a killed distributed run's parts count as done
        _check_provenance(output, record_log, inputs, work.pop("job"))
        resumed = len(record_log.done)  # before this run's records join them
        todo = [u for u in inputs.utts if u.utt_id not in record_log.done]
        return resumed, [len(todo), _recognize_into(record_log, todo, **work)]


def _transcribe_shard(output: str | Path, inputs: Inputs, formats: Sequence[str], rank: int, world_size: int, *,
                      resume: bool, overwrite: bool, work: dict) -> tuple[int, list]:
    """This rank's share into its part file; rank 0 then merges every part into ``output``.

    Returns (files resumed, [files, audio seconds] of this run over all ranks), on every rank.
    """
    done = None
    if rank == 0:  # validate the output and fold in a killed run's parts before anyone starts
        _refuse_foreign_targets(output, formats, overwrite)
        with TranscriptLog(output, resume=resume, overwrite=overwrite) as record_log:
            _merge_parts(output, record_log, keep=resume)
            _check_provenance(output, record_log, inputs, work["job"])
            done = record_log.done
    del work["job"]
    distributed = _distributed()
    done = distributed.broadcast(done)
    todo = shard([u for u in inputs.utts if u.utt_id not in done], rank, world_size)
    with TranscriptLog(part_path(output, rank), resume=False, overwrite=True) as part_log:
        this_run = [len(todo), _recognize_into(part_log, todo, **work)]
    this_run = distributed.all_reduce(this_run)  # also waits until every part is complete
    if rank == 0:
        with TranscriptLog(output, resume=True) as record_log:
            _merge_parts(output, record_log, keep=True)
    return len(done), this_run


def _write_outputs(output: str | Path, inputs: Inputs, formats: Sequence[str], subtitles: SubtitleConfig, *,
                   t0: float, this_run: list, resumed: int) -> dict:
    """Put the records in input order, write the derived formats, and return the summary (timed from ``t0``)."""
    sort_records(output, [u.utt_id for u in inputs.utts])
    written = write_derived(output, formats, subtitles)
    summary = summarize(output, inputs, wall_s=time.perf_counter() - t0, this_run_files=int(this_run[0]),
                        this_run_audio_s=this_run[1], resumed=resumed)
    summary["outputs"] = {"jsonl": str(output), **written, "summary": str(summary_path(output))}
    return summary


def _recognize_into(record_log: TranscriptLog, todo: Sequence[Utterance], *, model, tokenizer, sample_rate_hz: int,
                    min_duration_s: float, progress: bool | None, **batching) -> float:
    """Transcribe ``todo`` into ``record_log`` (unreadable files get a line with the reason); return audio seconds."""
    usable, failed = probe_durations(todo, sample_rate_hz=sample_rate_hz, min_duration_s=min_duration_s)
    record_log.write([make_record(u.utt_id, u.audio_path, u.duration_s or None, None, error=reason)
                      for u, reason in failed])
    claimed = {u.utt_id: u for u in todo}
    warnings = {u.utt_id: w for u in usable if (w := duration_warning(claimed[u.utt_id], u))}
    for utt_id, warning in warnings.items():
        log.warning("%s: %s", utt_id, warning)
    bar = Progress(len(todo), sum(u.duration_s for u in usable), enabled=progress)
    bar.update(len(failed), 0.0)
    for records in transcribe_utterances(model, tokenizer, usable, **batching):
        records = [{**r, "warning": warnings[r["id"]]} if r["id"] in warnings else r for r in records]
        record_log.write(records)
        bar.update(len(records), sum(r["duration"] for r in records if r["text"] is not None))
    bar.close()
    return bar.audio_s


def part_path(output: str | Path, rank: int) -> Path:
    """Where rank ``rank`` of a distributed run writes its records before rank 0 merges them into ``output``."""
    return Path(f"{output}.rank{rank}.part")


def _merge_parts(output: str | Path, record_log: TranscriptLog, *, keep: bool, chunk: int = 1000) -> int:
    """Append the records of every part file of ``output`` not yet in it (or drop them: not ``keep``); delete parts.

    Opening a part as a :class:`TranscriptLog` takes its lock (a part still being written
    is refused, naming it) and drops a half-written last line, as resuming a record does.
    """
    out = Path(output)
    merged = 0
    for part in sorted(out.parent.glob(glob.escape(out.name) + ".rank*.part")):
        if keep:
            with TranscriptLog(part, resume=True):  # takes the part's lock, drops a half-written line
                batch = []
                for r in iter_records(part):
                    if r["id"] not in record_log.done:
                        batch.append(r)
                    if len(batch) >= chunk:
                        record_log.write(batch)
                        merged, batch = merged + len(batch), []
                record_log.write(batch)
                merged += len(batch)
        part.unlink()
    return merged


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """Normalise ``"srt"`` or ``["txt", "srt"]``; raise ``ValueError`` naming an unknown format."""
    items = [formats] if isinstance(formats, str) else list(formats)
    out = tuple(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in items if str(f).strip()))
    unknown = [f for f in out if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return out


def _refuse_foreign_targets(output: str | Path, formats: Sequence[str], overwrite: bool) -> None:
    """A fresh run (no records yet) must not replace files it did not write; a resumed run wrote them itself."""
    out = Path(output)
    if overwrite or (out.is_file() and out.stat().st_size > 0):
        return
    targets = [*derived_paths(output, formats).values(), summary_path(output)]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise OutputError(f"refusing to overwrite {', '.join(existing)}: not written by a run into {output}; "
                          "choose another output or set overwrite=true")


def _refuse_writing_inputs(output: str | Path, formats: Sequence[str], input_path: str | Path,
                           inputs: Inputs) -> None:
    """No output file may be one of the inputs (the manifest or an audio file), ``overwrite`` or not."""
    sources = {Path(input_path).resolve(), *(Path(u.audio_path).resolve() for u in inputs.utts)}
    targets = [Path(output), summary_path(output), *(p for f, p in derived_paths(output, formats).items()
                                                     if f in ("txt", "csv"))]
    clash = [str(p) for p in targets if p.resolve() in sources]
    if clash:
        raise OutputError(f"refusing to write {', '.join(clash)}: it is one of the inputs (overwrite=true never "
                          "replaces an input); choose another output")


def summarize(output: str | Path, inputs: Inputs, *, wall_s: float, this_run_files: int, this_run_audio_s: float,
              resumed: int) -> dict:
    """Counts over the whole record file, timing of this run, and scores when references exist."""
    files, audio_s, failed, warnings = 0, 0.0, [], []
    hyps: dict[str, Hypothesis] = {}
    for r in iter_records(output):
        files += 1
        if r.get("warning"):
            warnings.append({"id": r["id"], "warning": r["warning"]})
        if r["text"] is None:
            failed.append({"id": r["id"], "path": r["path"], "reason": r["error"]})
        else:
            audio_s += r["duration"] or 0.0
        if inputs.has_references:
            hyps[r["id"]] = Hypothesis(r["id"], r["text"], r["error"])
    skipped = Counter(s.reason for s in inputs.skipped)
    summary = {
        "files": files, "transcribed": files - len(failed), "failed": len(failed),
        "audio_seconds": round(audio_s, 3), "audio_hours": round(audio_s / 3600, 4),
        "this_run": {"files": this_run_files, "audio_seconds": round(this_run_audio_s, 3),
                     "wall_seconds": round(wall_s, 3),
                     "real_time_factor": round(wall_s / this_run_audio_s, 5) if this_run_audio_s else None,
                     "resumed_files": resumed},
        "failed_files": failed, "warnings": warnings[:1000],
        "skipped": dict(skipped), "skipped_files": [vars(s) for s in inputs.skipped[:1000]],
        "peak_rss_mb": _peak_rss_mb(),
    }
    refs = [u for u in inputs.utts if u.text.strip() and u.utt_id in hyps]
    if refs:
        scores, _ = score(refs, [hyps[u.utt_id] for u in refs])
        summary["scores"] = {k: scores[k] for k in ("wer", "cer", "utterances", "words", "chars")}
    return summary


def _peak_rss_mb() -> dict:
    """Peak resident memory of this process and of its (finished) decoding workers, in MB."""
    return {"main": round(peak_rss_mb(), 1), "workers": round(peak_rss_mb(children=True), 1)}


class Progress:
    """Files done, audio hours and real-time factor: a bar on a terminal, a log line every 10 s otherwise."""

    def __init__(self, total_files: int, total_audio_s: float, *, enabled: bool | None = None,
                 log_every_s: float = 10.0):
        self.total_files, self.total_audio_s = total_files, total_audio_s
        self.files, self.audio_s = 0, 0.0
        self.t0 = self.last_log = time.perf_counter()
        self.log_every_s = log_every_s
        show = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if show:
            from tqdm import tqdm  # here: a run without a bar does not pay for its import

            self.bar = tqdm(total=total_files, unit="file", dynamic_ncols=True, file=sys.stderr)
        log.info("transcribing %d files (%.2f h of audio)", total_files, total_audio_s / 3600)

    def update(self, files: int, audio_s: float) -> None:
        """Count ``files`` more files done, ``audio_s`` seconds of audio among them."""
        self.files += files
        self.audio_s += audio_s
        now = time.perf_counter()
        rtf = (now - self.t0) / self.audio_s if self.audio_s else math.nan
        if self.bar is not None:
            hours = f"{self.audio_s / 3600:.2f}/{self.total_audio_s / 3600:.2f} h audio"
            self.bar.set_postfix_str(f"{hours}, RTF {rtf:.4f}", refresh=False)
            self.bar.update(files)
        elif now - self.last_log >= self.log_every_s:
            self.last_log = now
            self._log(rtf)

    def _log(self, rtf: float) -> None:
        log.info("%d/%d files, %.2f/%.2f h audio, RTF %.4f", self.files, self.total_files, self.audio_s / 3600,
                 self.total_audio_s / 3600, rtf)

    def close(self) -> None:
        """End the bar, or log the final line."""
        if self.bar is not None:
            self.bar.close()
        else:
            self._log((time.perf_counter() - self.t0) / self.audio_s if self.audio_s else math.nan)
