"""The one-part-at-a-time table of ``recipes/an4/ablation.sh``: every job's WER under every condition.

    python benchmarks/ablation_table.py recipes/an4/exp/ablation recipe silence babble ... [chain_pad=chain]

A ``LABEL=JOB`` argument is a row scored under ``LABEL`` (e.g. a job's model heard with ``--edge-pad``) whose
training figures are job ``JOB``'s.

Reads ``<dir>/generalization.json`` (``benchmarks/generalization.py``'s output for the jobs' models) and
each job's ``<dir>/<name>/train_summary.json``; prints a markdown table: greedy WER (%) per condition,
the clean and held-out rows with the lexicon + LM too, dev WER, training minutes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asr.analysis.tables import markdown_table  # noqa: E402

HELD_OUT = "speechocean762_held_out_digits"
SHORT = {"speechocean762_held_out_digits": "held-out digits", "babble_10dB": "babble", "reverb_0.6s": "reverb",
         "mp3_17kbps": "mp3", "opus_13kbps": "opus", "clipped_12dB": "clipped", "quiet_-20dB": "quiet"}


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def rows(results: dict, runs: dict[str, dict], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and one row per job: greedy WER per condition, LM WER on clean (and held out), dev WER, minutes."""
    conditions = list(next(iter(results.values())))
    lm_rows = [c for c in ("clean", HELD_OUT) if c in conditions]
    head = ["part", *(SHORT.get(c, c) for c in conditions), *(f"{SHORT.get(c, c)} LM" for c in lm_rows),
            "dev", "train min"]
    body = []
    for name in names:
        cells = results[name]
        lm = [pct(cells[c].get("lm", {}).get("wer")) for c in lm_rows]
        body.append([name, *(pct(cells[c]["greedy"]["wer"]) for c in conditions), *lm,
                     pct(runs[name]["best_dev_wer"]), f"{runs[name]['train_minutes']:.0f}"])
    return head, body


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: ablation_table.py DIR NAME [NAME ...]")
    root = Path(sys.argv[1])
    jobs = dict(a.partition("=")[::2] if "=" in a else (a, a) for a in sys.argv[2:])  # label -> job
    names = list(jobs)
    results = json.loads((root / "generalization.json").read_text())["results"]
    missing = [n for n in names if n not in results or not (root / jobs[n] / "train_summary.json").is_file()]
    if missing:
        sys.exit(f"{root}: no scores or no train_summary.json for {', '.join(missing)}")
    runs = {n: json.loads((root / jobs[n] / "train_summary.json").read_text()) for n in names}
    head, body = rows(results, runs, names)
    print(markdown_table(head, body), end="")


if __name__ == "__main__":
    main()
