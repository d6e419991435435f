"""asr-validate and the same check before training: every bad line named, nothing crashes, nothing lost."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from bad_inputs import write_bad_manifest
from conftest import TONE_TEXTS, tiny_settings, write_tone_corpus

from asr.data.manifest import ManifestError
from asr.data.tokenizer import CharTokenizer
from asr.data.validate import FATAL_KINDS, WARNING_KINDS, validate_manifest
from asr.frontend.stats import save_vocab
from asr.training.train import train

BIN = Path(sys.executable).parent


def _by_line(report: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for p in report["problems"]:
        out.setdefault(p["line"], []).append(p)
    return out


def test_every_bad_line_is_reported_with_its_line_path_and_kind(tmp_path, record_property):
    manifest, expected, n_good = write_bad_manifest(tmp_path / "corpus")
    report = validate_manifest(manifest, tokenizer=CharTokenizer.build(TONE_TEXTS), audio="decode")
    found = _by_line(report)
    assert set(found) == set(expected), (sorted(set(found) ^ set(expected)), report["problems"])
    for line, kinds in expected.items():
        assert any(p["kind"] in kinds for p in found[line]), (line, kinds, found[line])
        for p in found[line]:
            assert p["fatal"] == (p["kind"] in FATAL_KINDS)
            if p["kind"] not in ("bad_line", "path_escape"):  # unparsable lines have no resolved path
                assert Path(p["path"]).is_absolute() and Path(p["path"]).name in p["message"] + p["path"]
    # every kind the validator knows was produced by some line
    assert set(report["kinds"]) == set(FATAL_KINDS) | set(WARNING_KINDS)
    assert report["lines"] == n_good + len(expected) and not report["ok"]
    assert report["fatal"] == sum(1 for p in report["problems"] if p["kind"] in FATAL_KINDS)
    json.dumps(report)  # machine-readable as it is
    record_property("bad_input_kinds", len(expected))
    record_property("crashes", 0)  # validate_manifest returned a report for every line above


def test_cheap_header_check_finds_the_fatal_problems_training_cares_about(tmp_path):
    manifest, expected, _ = write_bad_manifest(tmp_path / "corpus")
    report = validate_manifest(manifest, audio="header")
    fatal_lines = {p["line"] for p in report["problems"] if p["fatal"]}
    must = {line for line, kinds in expected.items() if set(kinds) <= {"bad_line", "path_escape", "missing_audio",
                                                                       "empty_text", "duplicate"}}
    assert must <= fatal_lines


def test_validate_cli_writes_a_json_report_and_exits_1_on_fatal_problems(tmp_path, record_property):
    manifest, expected, _ = write_bad_manifest(tmp_path / "corpus")
    clean = write_tone_corpus(tmp_path / "clean", TONE_TEXTS)
    exe = shutil.which("asr-validate", path=str(BIN))
    assert exe, "asr-validate is not installed (pip install -e .)"
    save_vocab(tmp_path / "vocab.json", CharTokenizer.build(TONE_TEXTS))
    r = subprocess.run([exe, f"data.manifest=[{clean},{manifest}]", "data.vocab=vocab.json", "hydra.run.dir=v"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    report = json.loads((tmp_path / "v" / "validation.json").read_text())
    assert report["ok"] is False and [m["ok"] for m in report["manifests"]] == [True, False]
    bad = report["manifests"][1]
    assert {p["line"] for p in bad["problems"]} == set(expected)
    for p in [p for p in bad["problems"] if p["fatal"]][:20]:  # the console lists 20, the report all
        assert f"{manifest}:{p['line']}: {p['kind']}: {p['message']}" in r.stderr
    r = subprocess.run([exe, f"data.manifest={clean}", f"report={tmp_path / 'clean.json'}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "clean.json").read_text())["manifests"][0]["utterances"] == len(TONE_TEXTS)
    r = subprocess.run([exe, f"data.manifest={clean}", "audio=everything", "hydra.run.dir=v2"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "audio: 'everything' is not one of exists, header, decode" in r.stderr
    record_property("crashes", 0)


def test_training_refuses_fatal_problems_by_name_and_loses_no_earlier_work(tmp_path, record_property):
    manifest, expected, _ = write_bad_manifest(tmp_path / "corpus")
    good = write_tone_corpus(tmp_path / "good", TONE_TEXTS)
    run = tmp_path / "run"
    train(tiny_settings(good, max_epochs=1), run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    s = tiny_settings(good, max_epochs=1, overwrite=True)  # even when told to replace the run, bad data stops it first
    s = replace(s, data=replace(s.data, train_manifest=str(manifest)))
    with pytest.raises(ManifestError) as err:
        train(s, run)
    msg = str(err.value)
    assert msg.startswith(f"data.train_manifest: {manifest} has ") and "data.validate=false" in msg
    fatal = [p for p in validate_manifest(manifest, audio="header")["problems"] if p["fatal"]]  # what training sees
    assert f"has {len(fatal)} fatal problem(s)" in msg and len(fatal) > 20
    for p in fatal[:20]:
        assert f"line {p['line']}: {p['kind']}: {p['message']}" in msg
    assert msg.endswith(f"... and {len(fatal) - 20} more")
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    lost = sum(1 for p, data in before.items() if after.get(p) != data)
    assert lost == 0 and set(after) == set(before)
    record_property("files_lost", lost)
    # the check can be turned off: the run then drops what it cannot use, naming each utterance
    lines = (tmp_path / "corpus" / "bad.jsonl").read_bytes().split(b"\n")
    keep = [line for i, line in enumerate(lines, 1)
            if i <= len(TONE_TEXTS) or expected.get(i) in {("missing_audio",), ("unreadable_audio",)}]
    unreadable = tmp_path / "corpus" / "unreadable.jsonl"
    unreadable.write_bytes(b"\n".join(keep))
    s2 = replace(s, data=replace(s.data, validate=False, train_manifest=str(unreadable)))
    assert train(s2, tmp_path / "unchecked")["epochs"] == 1
    assert os.path.isfile(tmp_path / "unchecked" / "model.pt")
