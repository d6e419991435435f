"""End-to-end transcription speed: a folder of audio files in, JSONL out, as `asr-transcribe` runs it.

Everything a user waits for is timed: finding the files, reading their headers, decoding
the audio (in DataLoader workers), features, the model, the CTC alignment, and the
fsynced JSONL. Configurations are run alternately, ``--repeats`` times each, after one
untimed warm-up, and the median is reported:

* ``batched``: the defaults (120 s of padded audio per batch; a decoding worker only if a core is free);
* ``batched_1_worker``: the same with one DataLoader worker decoding audio;
* ``batch_size_1``: one file per batch (what a naive loop over files does);
* ``batched_<runtime>``: the defaults with another runtime (``--runtimes``): ``torch-int8`` (torch's dynamic
  int8 layers), ``onnx`` and ``onnx-int8`` (``asr export`` files made for the run, in onnxruntime);
  ``speedup_vs_torch`` is each one's throughput over ``batched``'s, and ``wer`` its score when the input
  is a manifest with transcripts;
* ``cli``: one cold ``asr-transcribe`` process, interpreter start, imports and model load included;
* ``ceiling``: no pipeline at all: random features of the same batch shapes straight into a fused
  ``torch.nn.LSTM`` or ``GRU`` (the model's own cell type, size and directions; + dense + log-softmax), in
  inference mode. Measured in the same loop, so machine load slows it as it slows the real path;
  ``batched_vs_ceiling`` is the share of it the pipeline reaches.

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
from asr.inference.backends import load_recognizer
from asr.inference.export import export_onnx
from asr.inference.transcribe import default_workers, transcribe
from asr.models.acoustic import num_parameters
from asr.models.checkpoint import load_model
from asr.runtime import setup_threads

GOAL_RTF = 0.01
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ceiling import reference_rnn  # noqa: E402
from hostinfo import cpu_flags  # noqa: E402

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
    p.add_argument("--input", required=True, help="folder of audio files (searched recursively), or a manifest")
    p.add_argument("--threads", type=int, default=2, help="torch threads (0: the free cores)")
    p.add_argument("--num-workers", type=int, default=None, help="decoding processes (default: as asr-transcribe)")
    p.add_argument("--max-batch-duration", type=float, default=120.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runtimes", default="torch-int8,onnx,onnx-int8", help="other runtimes timed beside torch")
    args = p.parse_args()

    threads = setup_threads(args.threads)
    workers = default_workers() if args.num_workers is None else args.num_workers
    model, tokenizer, _ = load_model(args.model)
    batched = {"max_batch_duration_s": args.max_batch_duration, "num_workers": workers}
    configs = {"batched": batched, "batched_1_worker": {**batched, "num_workers": 1},
               "batch_size_1": {**batched, "max_batch_duration_s": 1e-3}}  # every file alone
    with tempfile.TemporaryDirectory() as tmp:
        models = {name: model for name in configs}
        for runtime in filter(None, args.runtimes.split(",")):
            models[f"batched_{runtime}"] = runtime_model(args.model, runtime, threads, Path(tmp))
            configs[f"batched_{runtime}"] = batched
        ceiling = _ceiling_run(model, tokenizer, args.input, args.max_batch_duration)
        summary, times, scores = time_configs(models, tokenizer, args.input, Path(tmp), configs, ceiling,
                                              args.repeats)
        times["cli"] = [time_cli(args.model, args.input, Path(tmp), threads, workers)]
    print(json.dumps(report(args, model, summary, times, scores, configs, threads), indent=2))


def runtime_model(model_path: str, runtime: str, threads: int, tmp: Path):
    """The recognizer ``runtime`` runs: onnx / onnx-int8 export ``model_path`` into ``tmp`` first."""
    if runtime.startswith("onnx"):
        out = tmp / f"{runtime}.onnx"
        export_onnx(model_path, out, int8=runtime == "onnx-int8", card=False)
        return load_recognizer(out, "onnx", threads)[0]
    return load_recognizer(model_path, runtime, threads)[0]


def report(args, model, summary: dict, times: dict, scores: dict, configs: dict, threads: int) -> dict:
    """The JSON result: every config's times, RTF and scores, the ceiling, and the ratios between them."""
    audio_s = summary["audio_seconds"]
    med = {name: statistics.median(wall) for name, wall in times.items()}
    first = model.acoustic.layers[0]
    cell = f"{len(model.acoustic.layers)}x{first.forward_rnn.hidden_size} " \
           f"{'bi' if first.backward_rnn is not None else 'uni'}{type(first.forward_rnn).__name__}"
    result = {
        "benchmark": "transcribe_rtf",
        "model": str(Path(args.model).resolve()), "model_parameters": num_parameters(model),
        "input": str(Path(args.input).resolve()), "files": summary["files"], "transcribed": summary["transcribed"],
        "audio_seconds": round(audio_s, 2),
        "threads": threads, "cpu": cpu_name(), "cpu_flags": cpu_flags(), "torch": torch.__version__,
        **{name: {**stats(times[name], audio_s, cfg), **scores.get(name, {})} for name, cfg in configs.items()},
        "cli": stats(times["cli"], audio_s),
        "ceiling": {**stats(times["ceiling"], audio_s), "cell": cell},
        "batched_vs_ceiling": round(med["ceiling"] / med["batched"], 3),
        "speedup_batched_vs_1": round(med["batch_size_1"] / med["batched"], 2),
        "goal_rtf": GOAL_RTF,
    }
    for name in configs:
        if name.startswith("batched_") and name != "batched_1_worker":
            result[name]["speedup_vs_torch"] = round(med["batched"] / med[name], 2)
    result["meets_goal"] = result["batched"]["rtf"] <= GOAL_RTF
    return result




def time_configs(models: dict, tokenizer, input_path: str, tmp: Path, configs: dict, ceiling, repeats: int
                 ) -> tuple[dict, dict[str, list[float]], dict[str, dict]]:
    """The warm-up run's summary, wall seconds per run of every config and of the ceiling (alternating),
    and each config's WER/CER when the input has transcripts."""
    def run(name: str, cfg: dict) -> dict:
        return transcribe(models[name], tokenizer, input_path, tmp / f"{name}.jsonl", overwrite=True, resume=False,
                          progress=False, **cfg)

    summary = run("batched", configs["batched"])  # first-call costs: imports inside librosa, oneDNN set-up
    scores = {}
    for name, cfg in configs.items():  # every runtime's warm-up, and its scores
        s = run(name, cfg)
        if "scores" in s:
            scores[name] = {"wer": s["scores"]["wer"], "cer": s["scores"]["cer"]}
    times: dict[str, list[float]] = {name: [] for name in [*configs, "ceiling"]}
    for _ in range(repeats):
        for name, cfg in configs.items():
            t0 = time.perf_counter()
            s = run(name, cfg)
            times[name].append(time.perf_counter() - t0)
            assert s["transcribed"] == summary["transcribed"] and s["failed"] == summary["failed"]
        t0 = time.perf_counter()
        ceiling()
        times["ceiling"].append(time.perf_counter() - t0)
    return summary, times, scores


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
    """A closure running the fused ceiling of the model's own cell over the batch shapes the transcription uses."""
    cfg = model.features.config
    acoustic = model.acoustic
    rnn = acoustic.layers[0].forward_rnn
    ref = reference_rnn(rnn.hidden_size, len(acoustic.layers), cfg.output_dim, len(tokenizer),
                        rnn_type="gru" if isinstance(rnn, torch.nn.GRU) else "lstm",
                        bidirectional=acoustic.layers[0].backward_rnn is not None,
                        proj_size=getattr(rnn, "proj_size", 0)).eval()
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
