"""Run the reliability suite (tests/reliability, slow tests included) and print its figures.

The tests record what they tried and what happened (``record_property``; ``tests/conftest.py``
watches every command they run for tracebacks); this script runs them with a JUnit XML report and prints
the table of docs/reliability.md as Markdown followed by one JSON object: cases tried (a test that tries
several kinds of input counts each kind), tracebacks, hangs, files lost, code executed::

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


BOUND_S = 300.0  # a case that runs longer than this counts as a hang (every command in it has its own timeout)
AREAS = {  # test module -> what its cases try
    "test_validate": "bad manifest lines and audio files (`asr validate`, training)",
    "test_untrusted_files": "bad or malicious model files and configs read back",
    "test_broken_models": "models with non-finite weights or degenerate statistics",
    "test_config_errors": "config errors on the command line",
    "test_bounded_inputs": "impossible durations, offsets and sample rates",
    "test_bounded_properties": "manifest fields and audio headers drawn by hypothesis (10 s, 2 GB bounds)",
    "test_fuzz": "random bytes and values into parsers, audio loading and decoding",
    "test_no_loss": "runs into directories and files that hold results",
    "test_os_errors": "read-only and full disks, long names, missing permissions",
    "test_output_escaping": "file names and values that break output formats",
    "test_provenance": "resuming onto another job's output",
    "test_training_faults": "non-finite steps, out of memory, divergence",
    "test_crash_safety": "`kill -9` mid-run, then resumed",
    "test_command_errors": "bad input to every command, run as a user runs it",
}


def run_suite() -> tuple[list[dict], dict]:
    """One record per test case (module, kinds tried, properties, seconds, outcome) and the run's totals."""
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
    cases = [_case(tc) for tc in suite.iter("testcase")]
    run = {"tests": len(cases), "failed": sum(c["failed"] for c in cases), "seconds": round(seconds, 1),
           "returncode": r.returncode}
    return cases, run


def _case(tc) -> dict:
    props: Counter = Counter()
    for prop in tc.iter("property"):
        try:
            props[prop.get("name")] += int(float(prop.get("value")))
        except ValueError:  # plugins (hypothesis) add text properties of their own
            continue
    failure = next((x for x in tc if x.tag in ("failure", "error")), None)
    text = "" if failure is None else (failure.get("message") or "") + (failure.text or "")
    kinds = sum(v for k, v in props.items() if k.endswith("_kinds")) or 1
    return {"module": tc.get("classname", "").rsplit(".", 1)[-1], "kinds": kinds, "props": props,
            "seconds": float(tc.get("time") or 0), "failed": failure is not None,
            "timed_out": "TimeoutExpired" in text or "Timeout" in text}


def totals(cases: list[dict]) -> dict:
    """The four numbers the table leads with, plus what was counted."""
    p: Counter = sum((c["props"] for c in cases), Counter())
    return {"cases": sum(c["kinds"] for c in cases),
            "tracebacks": p["tracebacks"] + p["crashes"],
            "hangs": sum(c["seconds"] > BOUND_S or c["timed_out"] for c in cases),
            "files_lost": p["files_lost"] + sum(c["failed"] for c in cases if c["module"] == "test_no_loss"),
            "code_executed": p["code_executed"], "commands_run": p["commands_run"],
            "slowest_case_s": round(max((c["seconds"] for c in cases), default=0.0), 1), "figures": dict(p)}


def table(cases: list[dict], run: dict) -> str:
    t = totals(cases)
    lines = ["| what was tried | cases | failed | slowest (s) |", "|---|---:|---:|---:|"]
    for module, what in AREAS.items():
        mine = [c for c in cases if c["module"] == module]
        if mine:
            lines.append(f"| {what} | {sum(c['kinds'] for c in mine)} | {sum(c['failed'] for c in mine)} | "
                         f"{max(c['seconds'] for c in mine):.1f} |")
    lines.append(f"\n{t['cases']} cases in {run['tests']} tests ({t['commands_run']} commands run as a user runs "
                 f"them): {t['tracebacks']} tracebacks, {t['hangs']} hangs (a case over {BOUND_S:.0f} s, or a "
                 f"command past its timeout), {t['files_lost']} files lost or overwritten, {t['code_executed']} "
                 f"code executed from model files; {run['failed']} tests failed; {run['seconds']:.0f} s.")
    return "\n".join(lines)


def main() -> None:
    cases, run = run_suite()
    print(table(cases, run))
    print(json.dumps({**totals(cases), "run": run}))
    sys.exit(0 if run["failed"] == 0 else 1)


if __name__ == "__main__":
    main()
