"""Odd file names cannot break txt/csv outputs, impossible settings stop at once, total failure is not success."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, TONE_TEXTS, tone_audio, train_tone_model

from asr.inference.outputs import csv_cell, txt_field

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return train_tone_model(tmp_path_factory.mktemp("tone"))[0]


def _transcribe(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "asr"), "transcribe", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_escaping_rules():
    assert txt_field("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert [csv_cell(v) for v in ("=1+1", "+x", "-x", "@x", "\tx", "ok", "")] == \
        ["'=1+1", "'+x", "'-x", "'@x", "'\tx", "ok", ""]


def test_file_names_with_newlines_or_formulas_keep_one_line_and_one_text_cell_each(tmp_path, model):
    audio = tmp_path / "in"
    audio.mkdir()
    rng = np.random.default_rng(0)
    names = ["=HYPERLINK(1).flac", "two\nlines.flac", "plain.flac"]
    for name, text in zip(names, TONE_TEXTS):
        sf.write(audio / name, tone_audio(text, rng), SR, subtype="PCM_16")
    r = _transcribe(f"model={model}", f"input={audio}", f"output={tmp_path / 'out' / 'rec.jsonl'}",
                    "format=[txt,csv]", "threads=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "out" / "rec.txt").read_text().splitlines()
    assert len(lines) == 3 and any(line.startswith("two\\nlines.flac\t") for line in lines)
    with open(tmp_path / "out" / "rec.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["id"] for row in rows) == ["'=HYPERLINK(1).flac", "plain.flac", "two\nlines.flac"]


def test_impossible_settings_stop_with_one_line(tmp_path):
    for bad, key in (("threads=-1", "threads"), ("min_duration_s=-1", "min_duration_s")):
        r = _transcribe("model=m.pt", "input=in", "output=o.jsonl", bad, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and key in r.stderr, (bad, r.stderr)
    r = subprocess.run([str(BIN / "asr"), "evaluate", "model=m.pt", "data.manifest=x.jsonl", "threads=-2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "threads must be >= 0" in r.stderr


def test_exit_status_says_whether_every_input_some_or_none_failed(tmp_path, model):
    audio = tmp_path / "in"
    audio.mkdir()
    (audio / "broken.flac").write_bytes(b"not audio at all")
    r = _transcribe(f"model={model}", f"input={audio}", f"output={tmp_path / 'rec.jsonl'}", "threads=1", cwd=tmp_path)
    assert r.returncode == 1 and "could not be transcribed" in r.stderr
    sf.write(audio / "good.flac", tone_audio("abc", np.random.default_rng(1)), SR, subtype="PCM_16")
    r = _transcribe(f"model={model}", f"input={audio}", f"output={tmp_path / 'rec.jsonl'}", "threads=1", cwd=tmp_path)
    assert r.returncode == 3, r.stderr  # one failed, one transcribed: a script can tell "some" from "none"
    (audio / "broken.flac").unlink()
    r = _transcribe(f"model={model}", f"input={audio}", f"output={tmp_path / 'all.jsonl'}", "threads=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
