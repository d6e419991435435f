"""End-to-end transcription speed: a folder of audio files in, JSONL out, as `asr-transcribe` runs it.

Everything a user waits for is timed: finding the files, reading their headers, decoding
the audio (in DataLoader workers), features, the model, the CTC alignment, and the
fsynced JSONL. Configurations are run alternately, ``--repeats`` times each, after one
untimed warm-up, and the median is reported:

* ``batched``: the defaults (120 s of padded audio per batch; a decoding worker only if a core is free);
* ``batched_1_worker``: the same with one DataLoader worker decoding audio;
* ``batch_size_1``: one file per batch (what a naive loop over files does);
* ``cli``: one cold ``asr-transcribe`` process, interpreter start, imports and model load included;
* ``lstm_ceiling``: no pipeline at all: random features of the same batch shapes straight into a fused
  ``torch.nn.LSTM`` of the model's size (+ dense + log-softmax), in inference mode. Measured in the same
  loop, so machine load slows it as it slows the real path; ``batched_vs_ceiling`` is the share of it
  the pipeline reaches.

    python benchmarks/transcribe_rtf.py --model exp/an4/train/model.pt --input ../shared/data/an4/audio/an4test_clstk

Prints one JSON object. RTF = wall seconds / audio seconds; the goal is RTF <= 0.01 (100x real time).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from asr.data.dataset import make_batches
from asr.data.discover import list_inputs, probe_durations
from asr.inference.transcribe import default_workers, transcribe
from asr.models.acoustic import num_parameters
from asr.models.checkpoint import load_model
from asr.runtime import setup_threads

GOAL_RTF = 0.01
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import reference_lstm  # noqa: E402

CLI = "import sys; from asr.cli.apps import transcribe_main; sys.argv[0] = 'asr-transcribe'; transcribe_main()"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model file (model.pt of a training run)")
    p.add_argument("--input", required=True, help="folder of audio files (searched recursively)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: the free cores)")
    p.add_argument("--num-workers", type=int, default=None, help="decoding processes (default: as asr-transcribe)")
    p.add_argument("--max-batch-duration", type=float, default=120.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    threads = setup_threads(args.threads)
    workers = default_workers() if args.num_workers is None else args.num_workers
    model, tokenizer, _ = load_model(args.model)
    configs = {
        "batched": {"max_batch_duration_s": args.max_batch_duration, "num_workers": workers},
        "batched_1_worker": {"max_batch_duration_s": args.max_batch_duration, "num_workers": 1},
        "batch_size_1": {"max_batch_duration_s": 1e-3, "num_workers": workers},  # every file alone
    }
    ceiling = _ceiling_run(model, tokenizer, args.input, args.max_batch_duration)
    with tempfile.TemporaryDirectory() as tmp:
        summary, times = time_configs(model, tokenizer, args.input, Path(tmp), configs, ceiling, args.repeats)
        times["cli"] = [time_cli(args.model, args.input, Path(tmp), threads, workers)]
    audio_s = summary["audio_seconds"]
    med = {name: statistics.median(wall) for name, wall in times.items()}
    result = {
        "benchmark": "transcribe_rtf",
        "model": str(Path(args.model).resolve()), "model_parameters": num_parameters(model),
        "input": str(Path(args.input).resolve()), "files": summary["files"], "transcribed": summary["transcribed"],
        "audio_seconds": round(audio_s, 2),
        "threads": threads, "cpu": cpu_name(), "torch": torch.__version__,
        **{name: stats(times[name], audio_s, cfg) for name, cfg in configs.items()},
        "cli": stats(times["cli"], audio_s),
        "lstm_ceiling": stats(times["lstm_ceiling"], audio_s),
        "batched_vs_ceiling": round(med["lstm_ceiling"] / med["batched"], 3),
        "speedup_batched_vs_1": round(med["batch_size_1"] / med["batched"], 2),
        "goal_rtf": GOAL_RTF,
    }
    result["meets_goal"] = result["batched"]["rtf"] <= GOAL_RTF
    print(json.dumps(result, indent=2))


def time_configs(model, tokenizer, input_path: str, tmp: Path, configs: dict, ceiling, repeats: int
                 ) -> tuple[dict, dict[str, list[float]]]:
    """The warm-up run's summary, and wall seconds per run of every config and of the ceiling, alternating."""
    def run(name: str, cfg: dict) -> dict:
        return transcribe(model, tokenizer, input_path, tmp / f"{name}.jsonl", overwrite=True, resume=False,
                          progress=False, **cfg)

    summary = run("warmup", configs["batched"])  # first-call costs: imports inside librosa, oneDNN set-up
    times: dict[str, list[float]] = {name: [] for name in [*configs, "lstm_ceiling"]}
    for _ in range(repeats):
        for name, cfg in configs.items():
            t0 = time.perf_counter()
            s = run(name, cfg)
            times[name].append(time.perf_counter() - t0)
            assert s["transcribed"] == summary["transcribed"] and s["failed"] == summary["failed"]
        t0 = time.perf_counter()
        ceiling()
        times["lstm_ceiling"].append(time.perf_counter() - t0)
    return summary, times


def time_cli(model_path: str, input_path: str, tmp: Path, threads: int, workers: int) -> float:
    """Wall seconds of one cold ``asr-transcribe`` process over the input."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", CLI, f"model={model_path}", f"input={input_path}",
                    f"output={tmp / 'cli.jsonl'}", f"threads={threads}", "progress=false",
                    f"batch.num_workers={workers}", f"hydra.run.dir={tmp / 'hydra'}"],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def stats(wall: list[float], audio_s: float, cfg: dict | None = None) -> dict:
    """A config's settings with its wall times, their median, RTF and speed in multiples of real time."""
    med = statistics.median(wall)
    return {**(cfg or {}), "wall_s": [round(t, 3) for t in wall], "median_wall_s": round(med, 3),
            "rtf": round(med / audio_s, 5), "x_real_time": round(audio_s / med, 1)}


def _ceiling_run(model, tokenizer, input_path: str, max_batch_duration_s: float):
    """A closure running the fused-LSTM ceiling over the batch shapes the transcription uses."""
    cfg = model.features.config
    acoustic = model.acoustic
    rnn = acoustic.layers[0].forward_rnn
    ref = reference_lstm(rnn.hidden_size, len(acoustic.layers), cfg.output_dim, len(tokenizer)).eval()
    inputs = list_inputs(input_path)
    utts, _ = probe_durations(inputs.utts, sample_rate_hz=cfg.sample_rate_hz)
    durations = [u.duration_s for u in utts]
    shapes = [(len(b), max(int(durations[i] / cfg.output_frame_shift_s) for i in b))
              for b in make_batches(durations, max_batch_duration_s, shuffle=False)]
    feats = [torch.randn(n, t, cfg.output_dim) for n, t in shapes]

    def run() -> None:
        with torch.inference_mode():
            for x in feats:
                ref(x)
    run()  # kernel set-up, as the warm-up run does for the real path
    return run


if __name__ == "__main__":
    main()
