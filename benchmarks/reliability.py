"""Run the reliability suite (tests/reliability, slow tests included) and print its figures.

The tests record what they tried and what happened (``record_property``); this script runs
them with a JUnit XML report, adds the figures up, and prints the table of docs/reliability.md as
Markdown followed by one JSON object::

    python benchmarks/reliability.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite() -> tuple[Counter, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability",
                            f"--junitxml={xml}", "-o", "junit_family=xunit1"], cwd=ROOT, capture_output=True,
                           text=True)
        seconds = time.perf_counter() - t0
        if not xml.is_file():
            sys.exit(f"pytest did not run:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    figures: Counter = Counter()
    for prop in suite.iter("property"):
        try:
            figures[prop.get("name")] += int(float(prop.get("value")))
        except ValueError:  # plugins (hypothesis) add text properties of their own
            continue
    run = {"tests": int(suite.get("tests")), "failures": int(suite.get("failures")),
           "errors": int(suite.get("errors")), "skipped": int(suite.get("skipped")), "seconds": round(seconds, 1),
           "returncode": r.returncode}
    return figures, run


def table(f: Counter, run: dict) -> str:
    ok = run["failures"] == 0 and run["errors"] == 0
    rows = [
        ("bad manifest lines and audio files (`asr-validate`, training)",
         f"{f['bad_input_kinds']} kinds", f"all reported by line and path; crashes {f['crashes']}, "
                                          f"files lost {f['files_lost']}"),
        ("bad or malicious model files", f"{f['bad_model_kinds']} kinds",
         f"{f['bad_models_refused']} refused with the file named; code executed {f['code_executed']}"),
        ("config errors", f"{f['config_errors_named']} cases",
         f"{f['config_errors_named']} name the key and the allowed values"),
        ("random bytes into `load_audio` / `audio_info`", f"{f['fuzz_audio_files']} files",
         "only `AudioError` raised"),
        ("non-finite loss or gradient steps", f"{f['nonfinite_steps_skipped']} injected",
         f"{f['nonfinite_steps_skipped']} skipped, counted, utterances named"),
        ("out of memory on a batch", f"{f['oom_batches_split']} injected",
         f"{f['oom_batches_split']} batches split and retried; training completed"),
        ("`kill -9` mid-epoch, `asr-train` resumed", "1",
         f"final weights equal: {'yes' if f['kill9_train_resumed_equal'] else 'no'}; checkpoint read "
         f"{f['kill9_train_checkpoint_loads']} times while being rewritten, never unloadable"),
        ("`kill -9` mid-run, `asr-transcribe` resumed", "1",
         f"output identical: {'yes' if f['kill9_transcribe_resumed_equal'] else 'no'}"),
    ]
    lines = ["| what was tried | how many | outcome |", "|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"\n{run['tests']} tests in tests/reliability, {run['failures'] + run['errors']} failed "
                 f"({'all passed' if ok else 'NOT all passed'}), {run['seconds']:.0f} s.")
    return "\n".join(lines)


def main() -> None:
    figures, run = run_suite()
    print(table(figures, run))
    print(json.dumps({"figures": dict(sorted(figures.items())), "run": run}))
    sys.exit(0 if run["failures"] == 0 and run["errors"] == 0 else 1)


if __name__ == "__main__":
    main()
