"""Cold start of ``asr transcribe`` on one short file: wall time of fresh processes, and what their imports cost.

Each round starts ``python -m asr transcribe`` once per runtime (``runtime=onnx`` on an export, and
``runtime=torch`` on the model file when ``--model`` is given), runtimes alternating, each into a fresh
output folder, and times the whole process from the parent (interpreter start to exit). One more run
per runtime under ``python -X importtime`` gives the import time per top-level package (the modules'
own times summed, so the packages add up to the total) and whether torch was imported at all.
``python -c pass`` is timed alongside as the interpreter's own floor.

    taskset -c 0 python benchmarks/cold_start.py --model recipes/an4/exp/train/model.pt \\
        --manifest recipes/an4/exp/data/test.jsonl --runs 7

Without ``--onnx``, the model file is exported into a temporary folder first. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hostinfo import host  # benchmarks/ is on sys.path when run as a script


def pick_audio(manifest: str, duration_s: float) -> tuple[str, float]:
    """The manifest's first utterance closest to ``duration_s`` seconds: ``(path, duration)``."""
    from asr.data.manifest import read_manifest

    best = min(read_manifest(manifest), key=lambda u: abs(u.duration_s - duration_s))
    return str(Path(best.audio_path).resolve()), best.duration_s


def transcribe_command(runtime: str, model: str, audio: str, out_dir: Path, extra: list[str],
                       settings: list[str]) -> list[str]:
    return [sys.executable, *extra, "-m", "asr", "transcribe", f"runtime={runtime}", f"model={model}",
            f"input={audio}", f"output={out_dir / 'out.jsonl'}", f"hydra.run.dir={out_dir / 'hydra'}",
            "progress=false", *settings]


def run_once(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Wall seconds of one fresh process, from the parent's side; a failed run stops the benchmark."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done


def import_costs(stderr: str, top: int) -> dict:
    """``-X importtime`` lines → total import seconds, the ``top`` packages by their modules' own time, torch or not."""
    own: Counter[str] = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _, name = line[len("import time:"):].split("|")
        if self_us.strip().isdigit():
            own[name.strip().split(".")[0]] += int(self_us)
    return {"total_s": round(sum(own.values()) / 1e6, 3), "torch_imported": "torch" in own,
            "top_packages_s": {k: round(v / 1e6, 3) for k, v in own.most_common(top)}}


def measure(commands: dict[str, tuple[str, str]], audio: str, runs: int, tmp: Path, settings: list[str]) -> dict:
    """Median wall of ``runs`` alternating cold processes per runtime, their transcripts, one importtime run each."""
    walls: dict[str, list[float]] = {name: [] for name in [*commands, "python -c pass"]}
    texts: dict[str, set[str]] = {name: set() for name in commands}
    for r in range(runs):
        walls["python -c pass"].append(run_once([sys.executable, "-c", "pass"], tmp)[0])
        for name, (runtime, model) in commands.items():
            out = tmp / f"{name}-{r}"
            wall, _ = run_once(transcribe_command(runtime, model, audio, out, [], settings), tmp)
            walls[name].append(wall)
            texts[name].add(json.loads((out / "out.jsonl").read_text())["text"])
    result = {name: {"median_s": round(statistics.median(w), 3), "wall_s": [round(x, 3) for x in w]}
              for name, w in walls.items()}
    for name, (runtime, model) in commands.items():
        cmd = transcribe_command(runtime, model, audio, tmp / f"{name}-importtime", ["-X", "importtime"], settings)
        _, done = run_once(cmd, tmp)
        result[name].update(text=sorted(texts[name]), imports=import_costs(done.stderr, 12))
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", help="an asr export (default: export --model into a temporary folder)")
    p.add_argument("--model", help="the model file: exported when --onnx is not given, and timed with runtime=torch")
    p.add_argument("--audio", help="the file to transcribe (default: the --manifest utterance nearest --duration)")
    p.add_argument("--manifest")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-torch", action="store_true", help="time runtime=onnx only")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more asr transcribe settings (threads=1)")
    args = p.parse_args()
    if not args.onnx and not args.model:
        p.error("give --onnx or --model")
    if not args.audio and not args.manifest:
        p.error("give --audio or --manifest")
    audio, duration = (str(Path(args.audio).resolve()), None) if args.audio else pick_audio(args.manifest,
                                                                                         args.duration)
    with tempfile.TemporaryDirectory() as tmp:
        onnx = args.onnx
        if onnx is None:
            from asr.inference.export import export_onnx

            onnx = str(Path(tmp) / "model.onnx")
            export_onnx(args.model, onnx, card=False)
        commands = {"onnx": ("onnx", str(Path(onnx).resolve()))}
        if args.model and not args.no_torch:
            commands["torch"] = ("torch", str(Path(args.model).resolve()))
        before = host()
        result = measure(commands, audio, args.runs, Path(tmp), args.set)
    print(json.dumps({"benchmark": "cold_start", "audio": audio, "audio_seconds": duration, "runs": args.runs,
                      "settings": args.set,
                      "host": before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
                      "runtimes": result}, indent=2))


if __name__ == "__main__":
    main()
