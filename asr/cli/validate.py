"""``asr validate``: check manifests line by line before any training (:class:`asr.config.commands.ValidateConfig`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from asr.cli.common import conf_app, run_dir, validated
from asr.config.commands import ValidateConfig
from asr.fileio import atomic_write_text, refuse_to_replace


@conf_app("validate")
def validate_main(cfg: DictConfig) -> None:
    from asr.data.validate import validate_manifest
    from asr.frontend.stats import load_vocab

    c = validated(cfg, ValidateConfig)
    tokenizer = load_vocab(c.data.vocab) if c.data.vocab else None
    reports = [validate_manifest(m, features=c.features, tokenizer=tokenizer, audio=c.audio,
                                 duration_tolerance_s=c.duration_tolerance_s, require_text=c.require_text)
               for m in c.manifests]
    out = Path(c.report) if c.report else run_dir() / "validation.json"
    refuse_to_replace([out], overwrite=c.overwrite, same_job=_report_of(out, c.manifests))
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


def _report_of(path: Path, manifests: list[str]) -> bool:
    """Whether ``path`` is asr validate's report on ``manifests`` (a rerun may replace it)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        return [Path(r["manifest"]).resolve() for r in report["manifests"]] == [Path(m).resolve() for m in manifests]
    except (OSError, ValueError, TypeError, KeyError):
        return False
